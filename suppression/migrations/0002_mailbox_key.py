"""Re-key the stored addresses under ``mailcore.addresses.mailbox_key`` (issue 14): before it,
``recipient`` was only stripped and lower-cased, so one mailbox could hold entries under two
spellings (``bücher.example`` / ``xn--bcher-kva.example``, NFD / NFC). Entries that now share
a ``(recipient, type)`` are merged: a ``Compliance`` one wins, else the latest (``updated``,
then ``id``). One read of the table, then only the moved rows and those they meet (batched)."""

from django.db import migrations, models

from mailcore.addresses import mailbox_key

COMPLIANCE = "Compliance"
BATCH = 1000


def rekey(apps, schema_editor):
    Entry = apps.get_model("suppression", "SuppressionEntry")
    groups: dict[tuple[str, str], list[tuple]] = {}
    moved = set()
    rows = Entry.objects.order_by().values_list("id", "recipient", "type", "source", "updated")
    for pk, recipient, kind, source, updated in rows.iterator(chunk_size=5000):
        key = mailbox_key(recipient)
        if key != recipient:
            moved.add(pk)
            groups.setdefault((key, kind), []).append((source == COMPLIANCE, updated, pk))
    if not moved:
        return
    keys = sorted({key for key, _kind in groups})
    for start in range(0, len(keys), BATCH):
        staying = rows.filter(recipient__in=keys[start : start + BATCH])
        for pk, recipient, kind, source, updated in staying:
            if (recipient, kind) in groups:
                groups[(recipient, kind)].append((source == COMPLIANCE, updated, pk))
    doomed, renamed = [], []
    for (key, _kind), found in groups.items():
        found.sort(reverse=True)
        winner = found[0][2]
        doomed.extend(pk for _c, _u, pk in found[1:])
        if winner in moved:
            renamed.append(Entry(id=winner, recipient=key))
    for start in range(0, len(doomed), BATCH):
        Entry.objects.filter(id__in=doomed[start : start + BATCH]).delete()
    Entry.objects.bulk_update(renamed, ["recipient"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="suppressionentry",
            name="recipient",
            field=models.CharField(help_text="canonical address (mailcore.addresses.mailbox_key)", max_length=512),
        ),
        migrations.RunPython(rekey, migrations.RunPython.noop),
    ]
