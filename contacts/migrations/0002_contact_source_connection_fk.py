"""contacts.Contact.source_connection_id (a plain id) becomes the ForeignKey `source_connection`.

The column keeps its name and its values; only the foreign key constraint is added.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_initial"),
        ("contacts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("contact", "source_connection_id", "source_connection"),
                migrations.AlterField(
                    model_name="contact",
                    name="source_connection",
                    field=models.BigIntegerField(
                        blank=True, null=True, db_column="source_connection_id"
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterField(
            model_name="contact",
            name="source_connection",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="connectors.connection",
            ),
        ),
    ]
