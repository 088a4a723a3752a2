"""The transmission table's ``campaign_id``, ``template_id`` and ``list_id`` keep one plain
b-tree index each and lose the ``varchar_pattern_ops`` (``_like``) index that ``db_index=True``
gave each: nothing matches them with LIKE, and every transmission row inserted or updated
wrote three index entries for nothing. An SMTP injection writes its transmission row three
times (stored, started, finished), so this is nine index entries a message
(bench/RESULTS.md, "Session 18").

The plain indexes are renamed, not rebuilt: the upgrade takes no time on a large table.
"""

from django.db import migrations, models

FIELDS = {  # column: (the index db_index=True made, its name from now on)
    "campaign_id": ("transmissions_transmission_campaign_id_4558e001", "tx_campaign_id"),
    "template_id": ("transmissions_transmission_template_id_e6bf3dd0", "tx_template_id"),
    "list_id": ("transmissions_transmission_list_id_f0f399a4", "tx_list_id"),
}

FORWARD = [
    sql
    for column, (old, new) in FIELDS.items()
    for sql in (
        f"DROP INDEX IF EXISTS {old}_like",
        f"ALTER INDEX IF EXISTS {old} RENAME TO {new}",
        f"CREATE INDEX IF NOT EXISTS {new} ON transmissions_transmission ({column})",  # were it named otherwise
    )
]
BACKWARD = [
    sql
    for column, (old, new) in FIELDS.items()
    for sql in (
        f"ALTER INDEX IF EXISTS {new} RENAME TO {old}",
        f"CREATE INDEX IF NOT EXISTS {old}_like ON transmissions_transmission ({column} varchar_pattern_ops)",
    )
]


class Migration(migrations.Migration):
    dependencies = [("transmissions", "0008_content_lz4")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                *(
                    migrations.AlterField(
                        model_name="transmission",
                        name=column,
                        field=models.CharField(blank=True, default="", max_length=64),
                    )
                    for column in FIELDS
                ),
                *(
                    migrations.AddIndex(
                        model_name="transmission", index=models.Index(fields=[column], name=new)
                    )
                    for column, (_old, new) in FIELDS.items()
                ),
            ],
        )
    ]
