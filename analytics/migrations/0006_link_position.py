"""Links keyed by position too (issue 15): ``link_position`` on the link rollup and the
first-click table, in their unique keys. Existing rows get 0 (a link sent before positions).

Backwards: the rows that differ only by position are merged (counts summed, the earliest
first click kept) before the narrower keys come back, so unapplying never fails. A message
that clicked two positions of one URL counted once per position in ``unique_clicked`` (in the
hour of each position's first click); the merge takes back every such count but the
earliest, so the URL counts that message once, as before the migration.
"""

from django.db import migrations, models


MERGE_BY_OLD_KEYS = """
WITH gone AS (DELETE FROM analytics_link_rollup_hourly RETURNING *)
INSERT INTO analytics_link_rollup_hourly (hour, campaign_id, template_id, link_name, link_url, clicked, unique_clicked)
SELECT hour, campaign_id, template_id, link_name, link_url, sum(clicked), sum(unique_clicked)
FROM gone GROUP BY 1, 2, 3, 4, 5;
WITH extra AS (
  SELECT date_bin('1 hour', first_click, '2000-01-01 00:00+00') AS hour, campaign_id, template_id, link_name,
         link_url, count(*) AS n
  FROM (SELECT *, row_number() OVER (PARTITION BY message_id, link_name, link_url ORDER BY first_click) AS k
        FROM analytics_message_link_click) AS positions
  WHERE k > 1 GROUP BY 1, 2, 3, 4, 5
)
UPDATE analytics_link_rollup_hourly AS r SET unique_clicked = r.unique_clicked - extra.n FROM extra
WHERE r.hour = extra.hour AND r.campaign_id IS NOT DISTINCT FROM extra.campaign_id
  AND r.template_id IS NOT DISTINCT FROM extra.template_id AND r.link_name = extra.link_name
  AND r.link_url = extra.link_url;
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
