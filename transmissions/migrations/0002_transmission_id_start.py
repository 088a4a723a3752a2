from django.db import migrations


class Migration(migrations.Migration):
    """Transmission ids are numeric strings of about 17 digits (SPEC A.1): start at 10**16."""

    dependencies = [("transmissions", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE transmissions_transmission ALTER COLUMN id RESTART WITH 10000000000000001",
            migrations.RunSQL.noop,
        ),
    ]
