from django.db import migrations

# Every landed batch updates thousands of rollup rows in place. With free room on each
# page the new row versions stay on the same page (HOT updates): no index entry per
# update, and the dead versions of earlier batches are pruned as the page is revisited.
TABLES = ("analytics_rollup_hourly", "analytics_rollup_daily", "analytics_link_rollup_hourly")
FILLFACTOR = 50


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_rollup_daily"),
    ]

    operations = [
        migrations.RunSQL(
            [f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})" for table in TABLES],
            [f"ALTER TABLE {table} RESET (fillfactor)" for table in TABLES],
        ),
    ]
