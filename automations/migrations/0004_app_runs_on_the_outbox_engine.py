"""App runs become outbox rows (core/outbox.py): a count, a due time, a claim, an update time."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("automations", "0003_app_run_canceled")]

    operations = [
        migrations.AddField(
            model_name="apprun",
            name="attempt_count",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="apprun",
            name="attempting_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apprun",
            name="next_attempt_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apprun",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
        # Existing runs: due when they were written; a pending run taken up is claimed since then.
        migrations.RunSQL(
            "UPDATE automations_apprun SET next_attempt_at = created_at, "
            "attempting_since = CASE WHEN state = 'pending' THEN started_at END",
            migrations.RunSQL.noop,
        ),
    ]
