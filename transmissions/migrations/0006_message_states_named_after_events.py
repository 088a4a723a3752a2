"""Message states take their word from the event they write (issue 12), and a generation
failure is a state of its own instead of ``failed`` with a ``generation:`` prefix on
``last_error``:

    sent → delivered, deferred → delayed,
    failed with last_error 'generation: <reason>' → generation_failed with '<reason>',
    any other failed → bounced.

Reversible: the way back restores the old values and the prefix. Each UPDATE touches only
the rows in one old state; the partial index of delayed messages is rebuilt for its new
value.
"""

from django.db import migrations, models

FORWARD = """
UPDATE transmissions_message SET state = 'generation_failed', last_error = substr(last_error, 13)
 WHERE state = 'failed' AND last_error LIKE 'generation: %';
UPDATE transmissions_message SET state = 'generation_failed', last_error = substr(last_error, 12)
 WHERE state = 'failed' AND last_error LIKE 'generation:%';
UPDATE transmissions_message SET state = 'bounced' WHERE state = 'failed';
UPDATE transmissions_message SET state = 'delivered' WHERE state = 'sent';
UPDATE transmissions_message SET state = 'delayed' WHERE state = 'deferred';
"""
BACKWARD = """
UPDATE transmissions_message SET state = 'failed', last_error = 'generation: ' || last_error
 WHERE state = 'generation_failed';
UPDATE transmissions_message SET state = 'failed' WHERE state = 'bounced';
UPDATE transmissions_message SET state = 'sent' WHERE state = 'delivered';
UPDATE transmissions_message SET state = 'deferred' WHERE state = 'delayed';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("transmissions", "0005_transmission_template_snapshot"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="message", name="msg_deferred"),
        migrations.AlterField(
            model_name="message",
            name="state",
            field=models.CharField(
                choices=[
                    ("queued", "Queued"),
                    ("sending", "Sending"),
                    ("delivered", "Delivered"),
                    ("bounced", "Bounced"),
                    ("delayed", "Delayed"),
                    ("generation_failed", "Generation Failed"),
                    ("canceled", "Canceled"),
                ],
                db_default="queued",
                max_length=24,
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(condition=models.Q(("state", "delayed")), fields=["finished_at"], name="msg_delayed"),
        ),
    ]
