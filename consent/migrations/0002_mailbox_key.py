"""Re-key the register under ``mailcore.addresses.mailbox_key`` (issue 14): before it,
``recipient`` was only stripped and lower-cased, so one mailbox could have two histories
(``bücher.example`` / ``xn--bcher-kva.example``, NFD / NFC). Re-keyed, they are one history,
whose latest record (``recorded_at``, then ``id``) is the current consent."""

from django.db import migrations, models

from mailcore.addresses import mailbox_key

BATCH = 1000


def rekey(apps, schema_editor):
    Record = apps.get_model("consent", "TrackingConsent")
    rows = Record.objects.order_by().values_list("id", "recipient")
    renamed = [
        Record(id=pk, recipient=key)
        for pk, recipient in rows.iterator(chunk_size=5000)
        if (key := mailbox_key(recipient)) != recipient
    ]
    Record.objects.bulk_update(renamed, ["recipient"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("consent", "0001_register"),
    ]

    operations = [
        migrations.AlterField(
            model_name="trackingconsent",
            name="recipient",
            field=models.CharField(help_text="canonical address (mailcore.addresses.mailbox_key)", max_length=512),
        ),
        migrations.RunPython(rekey, migrations.RunPython.noop),
    ]
