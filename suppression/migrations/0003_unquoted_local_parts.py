"""Re-key the stored addresses again: ``mailcore.addresses.mailbox_key`` now unquotes a quoted
local part that needs no quotes (``"bob"@example.com`` is ``bob@example.com``, RFC 5322
§3.2.4), so an entry or record stored under the quoted spelling joins the mailbox it names.
The same re-key as 0002 (its merge rules included); a no-op where nothing is quoted."""

import importlib

from django.db import migrations

rekey = importlib.import_module("suppression.migrations.0002_mailbox_key").rekey


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0002_mailbox_key"),
    ]

    operations = [
        migrations.RunPython(rekey, migrations.RunPython.noop),
    ]
