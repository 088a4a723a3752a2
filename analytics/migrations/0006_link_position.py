"""Links keyed by position too (issue 15): ``link_position`` on the link rollup and the
first-click table, in their unique keys. Existing rows get 0 (a link sent before positions).

Backwards: the rows that differ only by position are merged (counts summed, the earliest
first click kept) before the narrower keys come back, so unapplying never fails; a message
that clicked two positions of one URL then counts twice in that URL's unique clicks.
"""

from django.db import migrations, models


MERGE_BY_OLD_KEYS = """
WITH gone AS (DELETE FROM analytics_link_rollup_hourly RETURNING *)
INSERT INTO analytics_link_rollup_hourly (hour, campaign_id, template_id, link_name, link_url, clicked, unique_clicked)
SELECT hour, campaign_id, template_id, link_name, link_url, sum(clicked), sum(unique_clicked)
FROM gone GROUP BY 1, 2, 3, 4, 5;
WITH gone AS (DELETE FROM analytics_message_link_click RETURNING *)
INSERT INTO analytics_message_link_click (message_id, link_name, link_url, campaign_id, template_id, first_click, prev_click)
SELECT message_id, link_name, link_url, min(campaign_id), min(template_id), min(first_click), min(prev_click)
FROM gone GROUP BY 1, 2, 3;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0005_webhook_feed"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="linkrolluphourly",
            name="link_rollup_hourly_key",
        ),
        migrations.RemoveConstraint(
            model_name="messagelinkclick",
            name="message_link_click_key",
        ),
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=MERGE_BY_OLD_KEYS),
        migrations.AddField(
            model_name="linkrolluphourly",
            name="link_position",
            field=models.IntegerField(db_default=0),
        ),
        migrations.AddField(
            model_name="messagelinkclick",
            name="link_position",
            field=models.IntegerField(db_default=0),
        ),
        migrations.AddConstraint(
            model_name="linkrolluphourly",
            constraint=models.UniqueConstraint(
                fields=("hour", "campaign_id", "template_id", "link_name", "link_url", "link_position"),
                name="link_rollup_hourly_key",
            ),
        ),
        migrations.AddConstraint(
            model_name="messagelinkclick",
            constraint=models.UniqueConstraint(
                fields=("message_id", "link_name", "link_url", "link_position"), name="message_link_click_key"
            ),
        ),
    ]
