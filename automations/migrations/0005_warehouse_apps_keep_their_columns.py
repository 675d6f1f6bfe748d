"""Warehouse apps made before calls had `variables` keep the columns they were writing.

An app without `columns` writes every export field to a column of the same name; `variables`
joined those fields, and a table made for the old list has no such column.
"""

from django.db import migrations

FIELDS_BEFORE_VARIABLES = (
    "call_id", "uuid", "status", "duration", "customer_number", "agent_number", "crm_username",
    "call_type", "disposition", "direction", "start_time", "end_time", "recording_url",
    "satisfaction", "resolved", "sentiment", "summary", "transcript", "notes", "updated_at",
)  # fmt: skip


def pin_columns(apps, schema_editor):
    App = apps.get_model("automations", "App")
    for app in App.objects.filter(kind="warehouse"):
        if "columns" not in app.config:
            app.config = {**app.config, "columns": {f: f for f in FIELDS_BEFORE_VARIABLES}}
            app.save(update_fields=["config"])


class Migration(migrations.Migration):
    dependencies = [("automations", "0004_app_runs_on_the_outbox_engine")]

    operations = [migrations.RunPython(pin_columns, migrations.RunPython.noop)]
