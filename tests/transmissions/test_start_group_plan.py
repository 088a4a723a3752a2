"""The SMTP group start finds its transmissions by id alone, whatever the planner's statistics
say (``transmissions.services._START_GROUP_SQL``). After a burst of injections, before
autovacuum analyzes the table (or with it off), the statistics say no transmission is
submitted; offered ``state = 'submitted' AND template_id = ''`` as index conditions, the
planner scanned every such index entry: 12-45 ms a group in the end-to-end bench, against
0.2 ms by the primary key."""

from __future__ import annotations

import pytest
from django.db import connection

from smtp_injection.services import Injection, SmtpPrincipal, smtp_message_prepare, smtp_messages_store
from tests.smtp_injection.helpers import message
from transmissions.models import Transmission, TransmissionState
from transmissions.services import _START_GROUP_SQL, _start_group_params, transmissions_start_group

pytestmark = pytest.mark.django_db


def _copies(source_id: int, count: int, state: str) -> None:
    """``count`` copies of transmission ``source_id`` in ``state``, in one statement."""
    columns = [field.column for field in Transmission._meta.concrete_fields if field.column != "id"]
    chosen = ", ".join("%s" if column == "state" else column for column in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO transmissions_transmission ({', '.join(columns)}) "
            f"SELECT {chosen} FROM transmissions_transmission, generate_series(1, %s) WHERE id = %s",
            [state, count, source_id],
        )


def _indexes(node: dict) -> list[tuple[str, str]]:
    """``(node type, index name or relation)`` of every scan of ``transmissions_transmission``."""
    found = []
    reads = node.get("Relation Name") == "transmissions_transmission" and node["Node Type"] != "ModifyTable"
    if reads or "Index Name" in node:
        found.append((node["Node Type"], node.get("Index Name", node.get("Relation Name", ""))))
    for child in node.get("Plans", []):
        found += _indexes(child)
    return found


def test_the_group_start_reads_by_id_alone_with_statistics_from_before_a_burst():
    (first,) = smtp_messages_store(prepared=[smtp_message_prepare(injection=Injection(
        principal=SmtpPrincipal(key_id=1, label="app"), listener_hostname="smtp.engage.test",
        client_address="127.0.0.1", helo="client.example.com", tls=True,
        mail_from="bounce@sender.example.com", rcpt_tos=("jo@example.com",), data=message().encode(),
    ))])  # fmt: skip
    _copies(first, 3000, TransmissionState.SUCCESS)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE transmissions_transmission")  # no transmission submitted, say the statistics
    _copies(first, 3000, TransmissionState.SUBMITTED)  # the burst, not analyzed yet
    ids = list(
        Transmission.objects.filter(state=TransmissionState.SUBMITTED).order_by("id").values_list("id", flat=True)[:64]
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + _START_GROUP_SQL, _start_group_params(ids))
        plan = cursor.fetchone()[0]
    scans = _indexes(plan[0]["Plan"])
    assert scans and {name for _kind, name in scans} == {"transmissions_transmission_pkey"}, scans
    started = transmissions_start_group(transmission_ids=ids)
    assert [row.id for row in started] == ids and all(row.state == TransmissionState.GENERATING for row in started)
