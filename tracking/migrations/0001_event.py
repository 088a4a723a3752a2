from django.db import migrations, models

CREATE = """
CREATE TABLE tracking_event (
    id bigserial NOT NULL,
    event_id varchar(40) NOT NULL,
    type varchar(32) NOT NULL,
    timestamp timestamptz NOT NULL,
    message_id varchar(40) NOT NULL DEFAULT '',
    transmission_id varchar(40) NOT NULL DEFAULT '',
    campaign_id varchar(64) NOT NULL DEFAULT '',
    template_id varchar(64) NOT NULL DEFAULT '',
    template_version varchar(16) NOT NULL DEFAULT '',
    rcpt_to text NOT NULL DEFAULT '',
    raw_rcpt_to text NOT NULL DEFAULT '',
    recipient_domain text NOT NULL DEFAULT '',
    rcpt_meta jsonb NOT NULL DEFAULT '{}',
    rcpt_tags jsonb NOT NULL DEFAULT '[]',
    friendly_from text NOT NULL DEFAULT '',
    subject text NOT NULL DEFAULT '',
    ip_address text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    accept_language text NOT NULL DEFAULT '',
    target_link_name text NOT NULL DEFAULT '',
    target_link_url text NOT NULL DEFAULT '',
    transactional boolean NOT NULL DEFAULT false,
    bounce_class varchar(8) NOT NULL DEFAULT '',
    error_code varchar(8) NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT '',
    extra jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, timestamp),
    UNIQUE (event_id, timestamp)
) PARTITION BY RANGE (timestamp);
CREATE TABLE tracking_event_default PARTITION OF tracking_event DEFAULT;
CREATE INDEX tracking_event_ts ON tracking_event (timestamp DESC, id DESC);
CREATE INDEX tracking_event_message ON tracking_event (message_id);
CREATE INDEX tracking_event_transmission ON tracking_event (transmission_id);

-- Creates the daily partition holding `day` if it is missing (called by the lander and by
-- the retention task, so partitions exist ahead of the events that need them).
CREATE OR REPLACE FUNCTION engage_event_partition(day date) RETURNS text AS $$
DECLARE name text := 'tracking_event_' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF tracking_event FOR VALUES FROM (%L) TO (%L)',
                       name, day::timestamptz AT TIME ZONE 'UTC', (day + 1)::timestamptz AT TIME ZONE 'UTC');
    END IF;
    RETURN name;
END $$ LANGUAGE plpgsql;
"""

DROP = """
DROP FUNCTION IF EXISTS engage_event_partition(date);
DROP TABLE IF EXISTS tracking_event CASCADE;
"""


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE, DROP)],
            state_operations=[
                migrations.CreateModel(
                    name="Event",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("event_id", models.CharField(max_length=40)),
                        ("type", models.CharField(max_length=32, choices=[("injection", "Injection"), ("delivery", "Delivery"), ("bounce", "Bounce"), ("delay", "Delay"), ("policy_rejection", "Policy Rejection"), ("generation_failure", "Generation Failure"), ("generation_rejection", "Generation Rejection"), ("open", "Open"), ("initial_open", "Initial Open"), ("click", "Click"), ("list_unsubscribe", "List Unsubscribe"), ("link_unsubscribe", "Link Unsubscribe")])),
                        ("timestamp", models.DateTimeField()),
                        ("message_id", models.CharField(default="", max_length=40)),
                        ("transmission_id", models.CharField(default="", max_length=40)),
                        ("campaign_id", models.CharField(default="", max_length=64)),
                        ("template_id", models.CharField(default="", max_length=64)),
                        ("template_version", models.CharField(default="", max_length=16)),
                        ("rcpt_to", models.TextField(default="")),
                        ("raw_rcpt_to", models.TextField(default="")),
                        ("recipient_domain", models.TextField(default="")),
                        ("rcpt_meta", models.JSONField(default=dict)),
                        ("rcpt_tags", models.JSONField(default=list)),
                        ("friendly_from", models.TextField(default="")),
                        ("subject", models.TextField(default="")),
                        ("ip_address", models.TextField(default="")),
                        ("user_agent", models.TextField(default="")),
                        ("accept_language", models.TextField(default="")),
                        ("target_link_name", models.TextField(default="")),
                        ("target_link_url", models.TextField(default="")),
                        ("transactional", models.BooleanField(default=False)),
                        ("bounce_class", models.CharField(default="", max_length=8)),
                        ("error_code", models.CharField(default="", max_length=8)),
                        ("reason", models.TextField(default="")),
                        ("extra", models.JSONField(default=dict)),
                    ],
                    options={"db_table": "tracking_event", "managed": False},
                ),
            ],
        ),
    ]
