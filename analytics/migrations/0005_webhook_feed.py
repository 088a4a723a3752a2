"""Webhook fan-out whose landing cost does not grow with the number of webhooks (issue 11).

The lander now appends each event once to ``analytics_webhook_feed`` instead of one
``analytics_webhook_pending`` row per (webhook, event); each webhook keeps a cursor over the
feed (``feed_position``), starting at the feed's head (``engage_webhook_feed_head()``), so
existing webhooks get every event landed from now on through the feed.

Rows already in ``analytics_webhook_pending`` stay where they are: the batch builder still
drains that table (replays use it), so an event queued before this migration is delivered
once, and none of it is also in the feed (which starts empty). Batches made before keep
their ``payload``; new ones point at a shared ``analytics_webhook_payload`` body.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

FEED_HEAD_FUNCTION = """
CREATE FUNCTION engage_webhook_feed_head() RETURNS bigint LANGUAGE sql STABLE AS
$$ SELECT coalesce(max(position), 0) FROM analytics_webhook_feed $$"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0004_rollup_fillfactor"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookFeedEvent",
            fields=[
                ("position", models.BigAutoField(primary_key=True, serialize=False)),
                ("event_pk", models.BigIntegerField()),
                ("event_timestamp", models.DateTimeField()),
                ("type", models.CharField(max_length=32)),
                ("landed_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "db_table": "analytics_webhook_feed",
            },
        ),
        migrations.RunSQL(FEED_HEAD_FUNCTION, "DROP FUNCTION engage_webhook_feed_head()"),
        migrations.CreateModel(
            name="WebhookPayload",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("content", models.BinaryField()),
                ("created_at", models.DateTimeField()),
            ],
            options={
                "db_table": "analytics_webhook_payload",
            },
        ),
        migrations.AddField(
            model_name="webhook",
            name="feed_position",
            field=models.BigIntegerField(
                db_default=models.Func(function="engage_webhook_feed_head", output_field=models.BigIntegerField())
            ),
        ),
        migrations.AlterField(
            model_name="webhookbatch",
            name="payload",
            field=models.JSONField(null=True),
        ),
        migrations.AddField(
            model_name="webhookbatch",
            name="body",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="analytics.webhookpayload"
            ),
        ),
    ]
