from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connectors", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="connection",
            name="provider",
            field=models.CharField(
                choices=[("hubspot", "HubSpot"), ("zoho", "Zoho CRM")], max_length=32
            ),
        ),
    ]
