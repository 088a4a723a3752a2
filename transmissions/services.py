"""Writes about transmissions: accept (store + enqueue), cancel, start generation, finish.

Sending itself (claiming messages, rendering, handing off to the relay) is in
``transmissions.sending``; the tasks in ``transmissions.tasks`` only unpack ids and call
these functions.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import NOT_PROVIDED, BooleanField, Exists, OuterRef
from django.db.models.expressions import DatabaseDefault, Expression, RawSQL
from django.utils import timezone

from engage import errors
from mailcore.msys_api import COPY_TYPES
from recipient_lists.recipients import normalize_recipient
from recipient_lists.selectors import recipient_list_iter_recipients
from templates_app.rendering import content_compile
from templates_app.selectors import template_get_for_send
from templates_app.services import template_touch_last_use
from tracking.outbox import outbox_write
from transmissions.delivery import bounce_class
from transmissions.generation import transmission_event_fields
from transmissions.models import (
    GENERATED_STATES,
    PENDING_STATES,
    Message,
    MessageState,
    Transmission,
    TransmissionSource,
    TransmissionState,
)
from transmissions.payload import (
    TransmissionInput,
    TransmissionInputLimits,
    content_to_compile,
    recipient_check_limits,
    transmission_input_parse,
)

log = logging.getLogger(__name__)

#: The task that starts generation (``transmissions.tasks.transmission_generate_task`` is
#: registered under it). Enqueued by name: the tasks call these services, so the services may not
#: import the tasks back (pyproject.toml's layers contract inside each app).
GENERATE_TASK = "transmissions.generate"
#: The task that starts the generation of several transmissions (the SMTP listener's group).
GENERATE_GROUP_TASK = "transmissions.generate_group"

_COPY_SQL = "COPY transmissions_message (transmission_id, chunk, message_id, email, recipient) FROM STDIN"


@dataclass(frozen=True, slots=True)
class CreateResult:
    transmission_id: int
    accepted: int
    rejected: int
    rcpt_errors: list[dict[str, Any]]


def limits_from_settings() -> TransmissionInputLimits:
    return TransmissionInputLimits(
        max_substitution_data_bytes=settings.ENGAGE_MAX_SUBSTITUTION_DATA_BYTES,
        max_metadata_bytes=settings.ENGAGE_MAX_TRANSMISSION_METADATA_BYTES,
        max_content_bytes=settings.ENGAGE_MAX_CONTENT_BYTES,
        max_schedule_seconds=settings.ENGAGE_START_TIME_MAX_SECONDS,
    )


def message_id_new() -> str:
    """A message id: 20 hex characters (SPEC A.1), random so ids do not leak volumes."""
    return os.urandom(10).hex()


def _check_content(data: TransmissionInput) -> None:
    if data.template_id:
        try:
            template_get_for_send(template_id=data.template_id, use_draft=data.use_draft_template)
        except errors.NotFound:
            raise errors.SubresourceNotFound(f"template '{data.template_id}' does not exist") from None
    elif "email_rfc822" not in data.content:
        substitute = data.options.get("perform_substitutions") is not False
        content_compile(content_to_compile(data.content, substitute=substitute))  # 422 / 3000 with part and line


def _recipients(
    raw: list | None, data: TransmissionInput, *, limits: TransmissionInputLimits, max_errors: int | None,
    rcpt_types: bool = False,
) -> tuple[list[dict], list[dict], int]:  # fmt: skip
    """(accepted recipients, reported errors, rejected count); a stored list is copied.

    With ``rcpt_types`` (SMTP injection only) a recipient's ``rcpt_type`` (one of
    ``mailcore.msys_api.COPY_TYPES``) is kept; the REST API's never is."""
    if raw is None:
        return list(recipient_list_iter_recipients(list_id=data.list_id)), [], 0
    accepted: list[dict] = []
    reported: list[dict] = []
    rejected = 0
    tx_metadata = data.metadata
    for index, item in enumerate(raw):
        recipient, error = normalize_recipient(item, index)
        if error is None:
            assert recipient is not None  # no error: a recipient
            error = recipient_check_limits(recipient, index, tx_metadata=tx_metadata, limits=limits)
        if error is not None:
            rejected += 1
            if max_errors is None or len(reported) < max_errors:
                reported.append(error.as_dict())
            continue
        assert recipient is not None
        if isinstance(item.get("address"), str):
            recipient["address_string"] = item["address"].strip()  # the To header keeps it as given
        if rcpt_types and item.get("rcpt_type") in COPY_TYPES:
            recipient["rcpt_type"] = item["rcpt_type"]
        accepted.append(recipient)
    return accepted, reported, rejected


def _copy_messages(*, transmission_id: int, recipients: list[dict], chunk_size: int) -> None:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with connection.cursor() as cursor, cursor.cursor.copy(_COPY_SQL) as copy:
        for index, recipient in enumerate(recipients):
            copy.write_row(
                (
                    transmission_id,
                    index // chunk_size,
                    message_id_new(),
                    recipient["address"]["email"],
                    dumps(recipient),
                )
            )


@dataclass(frozen=True, slots=True)
class PreparedTransmission:
    """A validated transmission not stored yet (:func:`transmission_prepare`): the unsaved
    row, its accepted recipients in order with their message ids, and what was rejected."""

    transmission: Transmission
    recipients: list[dict]
    message_ids: list[str]
    rejected: int
    rcpt_errors: list[dict[str, Any]]
    template_id: str


def transmission_prepare(
    *, body: dict, max_rcpt_errors: int | None = None, now: datetime | None = None,
    source: TransmissionSource = TransmissionSource.API,
) -> PreparedTransmission:  # fmt: skip
    """Validate a transmission's body and build its unsaved row and recipients (reads a
    stored recipient list or template when the body names one; writes nothing).

    ``source`` is the way it came in (``TransmissionSource``): an SMTP one's recipients keep
    their ``rcpt_type`` (``cc``, ``bcc``, ``archive``), its events say they came over SMTP
    (``transmissions.generation.message_event_fields``), its ``email_rfc822`` is neither
    compiled nor measured here (the listener measured the DATA against its SIZE and checked
    the header block; generation compiles it once), its message ids are drawn here and its
    ``archive`` copies point at the copy they replicate. Whole-request problems raise an
    ``EngageError``; rejected recipients are counted and reported (at most
    ``max_rcpt_errors``). No valid recipient at all is 422 / 1400.
    """
    now = now or timezone.now()
    limits = limits_from_settings()
    smtp = source == TransmissionSource.SMTP
    if smtp:
        # The listener measured the DATA bytes against the SIZE it advertises
        # (ENGAGE_SMTP_MAX_MESSAGE_SIZE); the stored content (JSON-escaped, plus Received and Cc)
        # is larger, and measuring it again would refuse messages within SIZE (and JSON-encode
        # every message once more for nothing).
        limits = replace(limits, max_content_bytes=None)
    data, raw_recipients = transmission_input_parse(body, now=now, limits=limits, compile_rfc822=not smtp)
    _check_content(data)
    accepted, reported, rejected = _recipients(
        raw_recipients, data, limits=limits, max_errors=max_rcpt_errors, rcpt_types=smtp
    )
    if not accepted:
        error = errors.RequiredFieldMissing("At least one valid recipient is required")
        if reported:
            error.extra = {"rcpt_to_errors": reported}
        raise error
    chunk_size = max(1, settings.ENGAGE_GENERATION_CHUNK_SIZE)
    transmission = Transmission(
        # An SMTP injection has no start time nor template to pin: it is stored Generating,
        # and its group task reads it without writing the row again (_START_GROUP_SQL).
        state=TransmissionState.GENERATING if smtp else TransmissionState.SUBMITTED,
        generation_start_time=now if smtp else None,
        source=source,
        campaign_id=data.campaign_id,
        description=data.description,
        return_path=data.return_path,
        metadata=data.metadata,
        substitution_data=data.substitution_data,
        options=data.options,
        content=data.content,
        template_id=data.template_id,
        use_draft_template=data.use_draft_template,
        list_id=data.list_id,
        tracking_domain=data.tracking_domain,
        start_time=data.start_time,
        num_rcpts=len(accepted),
        rcpt_list_chunk_size=chunk_size,
        rcpt_list_total_chunks=(len(accepted) + chunk_size - 1) // chunk_size,
        **({"created_at": _created_at_default()} if smtp else {}),
    )
    message_ids: list[str] = []
    if smtp:
        message_ids = [message_id_new() for _ in accepted]
        _archive_copies_link(accepted, message_ids)
    return PreparedTransmission(
        transmission=transmission, recipients=accepted, message_ids=message_ids, rejected=rejected,
        rcpt_errors=reported, template_id=data.template_id,
    )  # fmt: skip


@functools.cache
def _created_at_default() -> DatabaseDefault:
    """``created_at``'s "the database fills it" value, made once: left out, ``Model.__init__``
    builds a ``DatabaseDefault`` expression for every transmission, a tenth of an SMTP
    message's preparation on the listener's event loop (bench/RESULTS.md, "Session 20").
    The group insert leaves the column to the database either way (:func:`_group_insert`)."""
    field = Transmission._meta.get_field("created_at")
    assert isinstance(field.db_default, Expression)  # Now()
    return DatabaseDefault(field.db_default, output_field=field)


def transmission_create(
    *, body: dict, max_rcpt_errors: int | None = None, now: datetime | None = None,
    source: TransmissionSource = TransmissionSource.API, enqueue: bool = True,
) -> CreateResult:  # fmt: skip
    """Validate and store a transmission with all its recipients (:func:`transmission_prepare`),
    then enqueue generation when the transaction commits (or leave it for the scheduler when
    ``start_time`` is ahead).

    An SMTP one is stored in one statement (:func:`transmissions_insert_group`, the listener
    stores several at once). ``enqueue=False`` leaves the start to the caller
    (:func:`transmission_generation_enqueue`, e.g. after its reply) or, failing that, to the
    scheduler (:func:`transmissions_due`).
    """
    prepared = transmission_prepare(body=body, max_rcpt_errors=max_rcpt_errors, now=now, source=source)
    transmission = prepared.transmission
    if source == TransmissionSource.SMTP:
        (transmission.id,) = transmissions_insert_group(prepared=[prepared])
    else:
        with transaction.atomic():
            transmission.save(force_insert=True)
            _copy_messages(
                transmission_id=transmission.id,
                recipients=prepared.recipients,
                chunk_size=transmission.rcpt_list_chunk_size,
            )
            if prepared.template_id:
                template_touch_last_use(template_id=prepared.template_id)
    if transmission.start_time is None and enqueue:
        transmission_id = transmission.id
        transaction.on_commit(lambda: transmission_generation_enqueue(transmission_id=transmission_id))
    return CreateResult(
        transmission_id=transmission.id,
        accepted=len(prepared.recipients),
        rejected=prepared.rejected,
        rcpt_errors=prepared.rcpt_errors,
    )


def _archive_copies_link(recipients: list[dict], message_ids: list[str]) -> None:
    """Point each SMTP ``archive`` recipient at the copy it replicates, the first envelope
    recipient (no ``rcpt_type``): ``archive_of`` = that copy's message id and its address,
    metadata, tags and ``tracking_consent`` if any, whose tracking tokens the archive copy's
    body carries and whose consent it needs (``transmissions.generation``; SMTP-INJECTION.md
    §1.6, SPEC A.5). Set here, after the recipients were normalised, so no request can set it."""
    original = next((index for index, recipient in enumerate(recipients) if not recipient.get("rcpt_type")), None)
    if original is None:
        return
    source = recipients[original]
    shown = {key: source[key] for key in ("address", "metadata", "tags", "tracking_consent") if key in source}
    for recipient in recipients:
        if recipient.get("rcpt_type") == "archive":
            recipient["archive_of"] = {"message_id": message_ids[original], "recipient": shown}


class _PreparedBinaryCursor(psycopg.Cursor):
    """A cursor that binds its parameters on the server (``%b``: binary, so a 10 KB message
    goes as it is, not escaped into an array literal as Django's client-side cursor does) and
    prepares its statement (planned once per connection). For :func:`transmissions_insert_group`,
    whose one statement is the same for every group: on the bench's 10 KB message the
    client-side quoting of the arrays took about a fifth of the listener's GIL samples
    (py-spy, bench/RESULTS.md "group store")."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool | None = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


@dataclass(frozen=True, slots=True)
class _GroupInsert:
    """The group INSERT of :func:`transmissions_insert_group`, built once per process from
    the model: its SQL and, per transmission column, how a value is passed."""

    sql: str
    attnames: tuple[str, ...]
    columns: tuple[str, ...]


@functools.cache
def _group_insert() -> _GroupInsert:
    """The statement: a transmission id drawn per input row (``ids``, materialised, so each
    ``nextval`` is taken once and stays with its row's ordinal), the transmission rows from
    one JSON array (``jsonb_populate_recordset`` over the table's own row type: one
    parameter for every column) and their message rows from arrays (one array per column,
    ``unnest``), each joined to its id by ordinal. A transmission's ``email_rfc822`` source
    goes apart, as one element of a ``text[]``, and is put back into ``content`` on the
    server (``jsonb_build_object``): inside the JSON array, its 10 KB of escaped text cost
    the listener a JSON encoding and PostgreSQL a character-by-character JSON parse per
    message (bench/RESULTS.md, "Session 17"). The columns are the model's own except
    the primary key and those the database fills (``db_default`` with no Python default:
    ``created_at``).

    Why one JSON array for the transmissions: bound as one array per column (some 23), the
    client-side dumping of the arrays cost 0.32-0.39 ms of CPU per message in groups of 3
    (bench/RESULTS.md, "The store on the loop"), a third of it per-array work; the JSON is
    one call to the C encoder."""
    opts = Transmission._meta
    fields = [
        field for field in opts.local_concrete_fields
        if field is not opts.pk and not field.generated
        and not (field.db_default is not NOT_PROVIDED and not field.has_default())
    ]  # fmt: skip
    columns = [connection.ops.quote_name(str(field.column)) for field in fields]
    content = connection.ops.quote_name(str(opts.get_field("content").column))
    started = connection.ops.quote_name(str(opts.get_field("generation_start_time").column))
    selected = [
        f"CASE WHEN raw.source IS NULL THEN t.{column} "
        f"ELSE t.{column} || jsonb_build_object('{EMAIL_RFC822}', raw.source) END"
        if column == content
        # stored Generating: started in the server's clock, as created_at (not the listener's)
        else f"CASE WHEN t.{column} IS NULL THEN NULL ELSE statement_timestamp() END" if column == started
        else f"t.{column}"
        for column in columns
    ]  # fmt: skip
    table = connection.ops.quote_name(opts.db_table)
    sql = f"""
WITH ids AS MATERIALIZED (
       SELECT nextval(pg_get_serial_sequence('{opts.db_table}', '{opts.pk.column}')) AS id, ord
         FROM generate_series(1, CASE WHEN coalesce(clock_timestamp() <= %b::timestamptz, true)
                                      THEN %b::integer ELSE 0 END) AS ord),
     tx AS (INSERT INTO {table} ({connection.ops.quote_name(str(opts.pk.column))}, {", ".join(columns)})
            SELECT ids.id, {", ".join(selected)}
              FROM jsonb_populate_recordset(NULL::{table}, %b::text::jsonb) WITH ORDINALITY AS t
              JOIN ids ON ids.ord = t.ordinality
              JOIN unnest(%b::text[]) WITH ORDINALITY AS raw(source, ord) ON raw.ord = t.ordinality),
     msg AS (INSERT INTO transmissions_message (transmission_id, chunk, message_id, email, recipient)
             SELECT ids.id, m.chunk, m.message_id, m.email, m.recipient
               FROM unnest(%b::bigint[], %b::integer[], %b::text[], %b::text[], %b::text[]::jsonb[])
                        AS m(ord, chunk, message_id, email, recipient)
               JOIN ids USING (ord))
SELECT id FROM ids ORDER BY ord
"""
    return _GroupInsert(
        sql=sql,
        attnames=tuple(field.attname for field in fields),
        columns=tuple(str(field.column) for field in fields),
    )


def transmissions_insert_group(*, prepared: Sequence[PreparedTransmission]) -> list[int]:
    """Store prepared SMTP transmissions (:func:`transmission_prepare`, with their message
    ids) and one message row per recipient each (chunks of ``rcpt_list_chunk_size``) in one
    statement on this thread's connection: one round trip and one commit for the whole group
    (the listener's group commit), all or nothing. Returns their ids in ``prepared``'s order.

    The statement is built once per process (:func:`_group_insert`) and the values go as one
    array per column, bound binary on the server (:class:`_PreparedBinaryCursor`), so the cost
    per message is building its row, not compiling or quoting SQL. Share of the listener's
    GIL samples (py-spy ``--gil`` under bench/smtp_injection.py, loaded machine): one
    statement per message through Django's INSERT compiler 17 %; per group, arrays quoted on
    the client 25 %; per group, bound binary 10 % (bench/RESULTS.md, "group store")."""
    insert = _group_insert()
    params = _group_params(insert, prepared)
    connection.ensure_connection()
    with connection.wrap_database_errors:
        # Any: django-stubs type the argument of make_cursor as Django's own wrapper.
        raw: Any = _PreparedBinaryCursor(connection.connection)
    wrapped = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with wrapped as cursor:
        cursor.execute(insert.sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    return _group_stored(prepared, ids)


class GroupDeadlinePassed(Exception):
    """The group's statement began on the server after its ``deadline``: it stored nothing."""


async def transmissions_insert_group_async(
    *,
    database: psycopg.AsyncConnection[Any],
    prepared: Sequence[PreparedTransmission],
    deadline: datetime | None = None,
) -> list[int]:
    """:func:`transmissions_insert_group` on an asyncio connection in autocommit mode (the
    SMTP listener's own, on its event loop: :func:`transmissions_store_connect`): the same
    statement, prepared on the server, and the same all-or-nothing commit. Returns the ids
    in ``prepared``'s order; raises ``psycopg.Error`` (nothing of the group is stored then).

    ``deadline`` (in the server's clock: :meth:`StoreConnection.server_time`): a
    statement the server begins after it stores nothing and raises
    :class:`GroupDeadlinePassed`. The listener answers ``451`` to a group over its time
    limit; a statement still in a frozen server's socket buffer then must not be committed
    once the server resumes, or a message answered ``451`` would be stored and sent while
    its client sends it again (tests/drills/test_smtp_drills.py, the frozen store backend).

    Why on the loop, not a thread: with the statement on a store thread, every group crossed
    from the loop to the thread and back (a queue, a futex wake-up, a self-pipe write, GIL
    hand-overs while the loop was busy); bench/RESULTS.md, "The store on the loop", has the
    listener's CPU per message before and after."""
    insert = _group_insert()
    params = _group_params(insert, prepared, deadline)
    async with database.cursor() as cursor:
        await cursor.execute(insert.sql, params, prepare=True, binary=True)
        ids = [row[0] for row in await cursor.fetchall()]
    if prepared and not ids:
        raise GroupDeadlinePassed(f"the group's statement began after {deadline}: nothing stored")
    return _group_stored(prepared, ids)


@dataclass(slots=True)
class StoreConnection:
    """The SMTP listener's asyncio connection (:func:`transmissions_store_connect`) and the
    server's clock against this process's ``time.monotonic()``, measured when it connected."""

    database: psycopg.AsyncConnection[Any]
    #: the server's clock (seconds since the epoch) minus ``time.monotonic()``
    clock_offset: float

    def server_time(self, monotonic: float) -> datetime:
        """``monotonic`` (a ``time.monotonic()`` value) in the server's clock, for the
        ``deadline`` of :func:`transmissions_insert_group_async`. Kept against the monotonic
        clock, a step of this host's wall clock after connecting moves no deadline."""
        return datetime.fromtimestamp(monotonic + self.clock_offset, UTC)


def transmissions_store_params(**overrides: Any) -> dict[str, Any]:
    """psycopg's connection parameters for Django's default database, as Django itself
    connects (``DATABASES``: host, port, name, user, password, ``OPTIONS``), without Django's
    own keys; ``overrides`` replace any of them."""
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params.setdefault("connect_timeout", 10)
    params.update(overrides)
    return params


async def transmissions_store_connect(**overrides: Any) -> StoreConnection:
    """A new asyncio connection in autocommit mode (:func:`transmissions_store_params`) for
    :func:`transmissions_insert_group_async`, with the server's clock offset measured over
    one round trip (its middle against ``clock_timestamp()``). Raises ``psycopg.Error``
    (``OperationalError`` when the server cannot be reached).

    The connection runs with ``enable_seqscan = off``. Its one statement reads no table
    but through the foreign-key check of each message row (``transmission_id``: a lookup
    by primary key), whose plan the server keeps for the connection's life. Planned while
    the statistics said the transmission table was nearly empty (a new install's first
    burst, before autovacuum's first analyze), it was a sequential scan, and every message
    after scanned the whole growing table: the group statement's server CPU a message rose
    from 0.22 to 0.47 ms over 2,400 messages in groups of 10, against a steady 0.075 ms
    with the scan off (bench/RESULTS.md, "Session 19")."""
    database = await psycopg.AsyncConnection.connect(**transmissions_store_params(**overrides), autocommit=True)
    try:
        await database.execute("SET enable_seqscan = off")
        sent = time.monotonic()
        async with database.cursor() as cursor:
            await cursor.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
            row = await cursor.fetchone()
        received = time.monotonic()
    except BaseException:
        await database.close()
        raise
    assert row is not None
    return StoreConnection(database=database, clock_offset=float(row[0]) - (sent + received) / 2)


def _group_params(
    insert: _GroupInsert, prepared: Sequence[PreparedTransmission], deadline: datetime | None = None
) -> list[Any]:
    """The parameters of :func:`_group_insert`'s statement for ``prepared``: the latest
    time the server may begin it (None: any), the group's size, the transmission rows as one JSON array of objects (column name to value;
    datetimes in ISO 8601 with their offset; ``content`` without its ``email_rfc822``), each
    row's ``email_rfc822`` source (None: it has none), and the message rows' columns (ordinal,
    chunk, message id, email, recipient as JSON text)."""
    dumps = _GROUP_JSON.encode
    rows: list[dict[str, Any]] = []
    sources: list[str | None] = []
    ords: list[int] = []
    chunks: list[int] = []
    message_ids: list[str] = []
    emails: list[str] = []
    recipients: list[str] = []
    for ord_, item in enumerate(prepared, 1):
        transmission = item.transmission
        row = {
            column: getattr(transmission, attname)
            for column, attname in zip(insert.columns, insert.attnames, strict=True)
        }
        source = transmission.content.get(EMAIL_RFC822)
        if isinstance(source, str):  # put back on the server (_group_insert)
            row["content"] = {key: value for key, value in transmission.content.items() if key != EMAIL_RFC822}
        sources.append(source if isinstance(source, str) else None)
        rows.append(row)
        size = transmission.rcpt_list_chunk_size
        for index, (recipient, message_id) in enumerate(zip(item.recipients, item.message_ids, strict=True)):
            ords.append(ord_)
            chunks.append(index // size)
            message_ids.append(message_id)
            emails.append(recipient["address"]["email"])
            recipients.append(dumps(recipient))
    return [deadline, len(prepared), dumps(rows), sources, ords, chunks, message_ids, emails, recipients]


def _iso_datetime(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not stored by the SMTP group insert")


EMAIL_RFC822 = "email_rfc822"  # the content field of a raw source (SPEC B §1.3)
_GROUP_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_iso_datetime)


def _group_stored(prepared: Sequence[PreparedTransmission], ids: list[int]) -> list[int]:
    for item, transmission_id in zip(prepared, ids, strict=True):
        item.transmission.id = transmission_id
    return ids


def transmissions_generation_enqueue(*, transmission_ids: Sequence[int]) -> bool:
    """Queue the start of generation of several stored transmissions in one task message
    (``transmissions.generate_group``): the listener's group, one broker write rather than
    one per message. Returns whether the broker took it; when it did not (logged), the
    scheduler starts them (:func:`transmissions_due`), as for
    :func:`transmission_generation_enqueue`."""
    try:
        current_app.send_task(GENERATE_GROUP_TASK, args=(list(transmission_ids),))
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, ...
        log.warning(
            "transmissions %s stored; their start was not queued (%s): the scheduler will start them",
            list(transmission_ids), exc,
        )  # fmt: skip
        return False
    return True


def transmission_generation_enqueue(*, transmission_id: int) -> None:
    """Queue the start of generation (after the commit). When the broker does not take it
    (Redis down), the transmission is stored all the same: the scheduler starts an immediate
    transmission still Submitted a minute after its creation (:func:`transmissions_due`)."""
    try:
        current_app.send_task(GENERATE_TASK, args=(transmission_id,))
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, ...
        log.warning(
            "transmission %s stored; its start was not queued (%s): the scheduler will start it", transmission_id, exc
        )


def transmission_cancel(*, transmission_id: int, now: datetime | None = None) -> None:
    """Cancel a scheduled transmission (SPEC B §1.8), or a stuck one.

    404 / 1600 unknown; 409 / 2006 when generating, done or already canceled; 409 / 2003
    within ``ENGAGE_SCHEDULED_DELETE_WINDOW`` seconds of its start (a transmission without a
    start time starts immediately, so it is always inside the window). A Generating
    transmission on which nothing has progressed for ``ENGAGE_SEND_CLAIM_TIMEOUT`` seconds
    (:func:`transmission_cancel_stuck`) is canceled; one that progresses is 409 / 2006.
    """
    now = now or timezone.now()
    window = settings.ENGAGE_SCHEDULED_DELETE_WINDOW
    transmission = Transmission.objects.filter(pk=transmission_id).only("state", "start_time").first()
    if transmission is None:
        raise errors.NotFound(f"Resource not found:transmission id {transmission_id}")
    stuck = transmission.state == TransmissionState.GENERATING
    if stuck and transmission_cancel_stuck(transmission_id=transmission_id):
        return
    if transmission.state != TransmissionState.SUBMITTED:
        raise errors.InvalidTransmissionState(
            f"Transmission {transmission_id} is in state {transmission.state}; only scheduled transmissions can be deleted"
        )
    if transmission.start_time is None or transmission.start_time - now < timedelta(seconds=window):
        raise errors.TooCloseToDelete(f"Deletion time window ({window} seconds) doesn't permit transmission deletion")
    updated = Transmission.objects.filter(
        pk=transmission_id, state=TransmissionState.SUBMITTED, start_time__gte=now + timedelta(seconds=window)
    ).update(state=TransmissionState.CANCELED, generation_end_time=now)
    if not updated:  # the scheduler started it meanwhile
        raise errors.InvalidTransmissionState(f"Transmission {transmission_id} is no longer scheduled")


#: The Generating transmission ``t`` no worker is on: nothing claimed, heart-beaten or
#: finished for ``%(stale)s`` seconds. An SMTP injection is stored Generating before any worker
#: has it: one none of whose messages was ever claimed is waiting in the queue (or its task
#: was lost, and the scheduler's start_due queues it again), not stuck, so a backlog makes it
#: neither cancelable (:data:`_STUCK_SQL`) nor a stalled chunk (``transmissions.sending``).
UNATTENDED_SQL = """
t.state = 'Generating'
   AND t.generation_start_time < now() - make_interval(secs => %(stale)s)
   AND NOT EXISTS (SELECT 1 FROM transmissions_message r
                    WHERE r.transmission_id = t.id
                      AND (r.claimed_at > now() - make_interval(secs => %(stale)s)
                           OR r.finished_at > now() - make_interval(secs => %(stale)s)))
   AND (t.source <> 'smtp'
        OR EXISTS (SELECT 1 FROM transmissions_message a WHERE a.transmission_id = t.id AND a.attempts > 0))"""
_STUCK_SQL = f"SELECT 1 FROM transmissions_transmission t WHERE t.id = %(id)s AND {UNATTENDED_SQL}"
# Every message not yet ended: never claimed, delayed, or claimed by a worker that died.
_CANCEL_MESSAGES_SQL = """
UPDATE transmissions_message
   SET state = 'canceled', finished_at = now(), claimed_by = '', last_error = %(reason)s
 WHERE transmission_id = %(id)s
   AND (state IN ('queued', 'delayed')
        OR (state = 'sending' AND claimed_at < now() - make_interval(secs => %(stale)s)))
RETURNING message_id, recipient
"""
# A transmission's counters (SPEC B §1.7) from its messages' states, for the statements below.
_COUNTERS = f"""
count(*) FILTER (WHERE m.state IN ({", ".join(f"'{state.value}'" for state in GENERATED_STATES)})) AS generated,
count(*) FILTER (WHERE m.state = '{MessageState.GENERATION_FAILED.value}') AS failed_gen,
count(*) FILTER (WHERE m.state IN ({", ".join(f"'{state.value}'" for state in PENDING_STATES)})) AS pending"""
_CANCEL_SQL = f"""
UPDATE transmissions_transmission t
   SET state = %(canceled)s, generation_end_time = now(), num_generated = c.generated, num_failed_gen = c.failed_gen
  FROM (SELECT {_COUNTERS} FROM transmissions_message m WHERE m.transmission_id = %(id)s) c
 WHERE t.id = %(id)s
"""
#: The bounce every canceled message gets (SparkPost's campaign cancel, SPEC B §1.8).
CANCELED_REASON = "554 5.7.1 [internal] Transmission cancelled"


def transmission_cancel_stuck(*, transmission_id: int) -> bool:
    """Cancel a Generating transmission that nothing works on: nothing was claimed, heart-
    beaten or finished for ``ENGAGE_SEND_CLAIM_TIMEOUT`` seconds (its chunks keep failing
    whole, or its tasks were lost). Its unended messages become ``canceled`` with a
    ``bounce`` event each (``CANCELED_REASON``, written to the event outbox in the same
    transaction), and it ends ``Canceled`` with its counters.
    False (nothing done) when it is not stuck."""
    stale = settings.ENGAGE_SEND_CLAIM_TIMEOUT
    with transaction.atomic():
        transmission = Transmission.objects.select_for_update().filter(pk=transmission_id).first()
        if transmission is None:
            return False
        with connection.cursor() as cursor:
            cursor.execute(_STUCK_SQL, {"id": transmission_id, "stale": stale})
            if cursor.fetchone() is None:
                return False
            cursor.execute(_CANCEL_MESSAGES_SQL, {"id": transmission_id, "stale": stale, "reason": CANCELED_REASON})
            canceled = cursor.fetchall()
            cursor.execute(_CANCEL_SQL, {"id": transmission_id, "canceled": TransmissionState.CANCELED})
        code, text = CANCELED_REASON.split(" ", 1)
        klass = bounce_class(int(code), text)
        events = [
            {"type": "bounce", **transmission_event_fields(transmission, message_id=message_id,
                                                            recipient=_recipient(recipient)),
             "reason": CANCELED_REASON, "raw_reason": CANCELED_REASON, "error_code": code, "bounce_class": klass}
            for message_id, recipient in canceled
        ]  # fmt: skip
        with connection.cursor() as cursor:
            outbox_write(cursor, events)  # in the transaction that cancels them
    log.warning("transmission %s was stuck and is canceled: %d message(s) canceled", transmission_id, len(canceled))
    return True


def _recipient(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str | bytes) else value


def transmission_start_generation(*, transmission_id: int) -> list[int]:
    """Move a submitted transmission to Generating (idempotent) and pin its template.

    A stored template is read once, here, in the transaction that moves the transmission to
    Generating: its version goes to ``template_version`` and its content and options to
    ``template_snapshot`` (:func:`_template_pin`). Every process that prepares the
    transmission compiles that snapshot, so all its messages (retries included) send one
    content and their events and tracking tokens name its version, whatever is edited,
    published or deleted meanwhile. Generation time rather than acceptance, because that is
    when SparkPost takes the template of a scheduled transmission: an edit published before
    the start time is sent.

    Returns the chunks that still have queued messages, for the caller to enqueue; empty
    when the transmission is missing, canceled or finished. Runs again safely after a crash
    (a redelivered task finds it Generating, leaves its pin alone and returns the remaining
    chunks).
    """
    with transaction.atomic():
        transmission = (
            Transmission.objects.select_for_update()
            .filter(pk=transmission_id)
            .only("state", "template_id", "use_draft_template", "template_version", "template_snapshot")
            .first()
        )
        if transmission is None or transmission.state not in (
            TransmissionState.SUBMITTED,
            TransmissionState.GENERATING,
        ):
            return []
        if transmission.state == TransmissionState.SUBMITTED:
            fields = ["state", "generation_start_time"]
            transmission.state = TransmissionState.GENERATING
            transmission.generation_start_time = timezone.now()
            if transmission.template_id:
                transmission.template_version, transmission.template_snapshot = _template_pin(transmission)
                fields += ["template_version", "template_snapshot"]
            transmission.save(update_fields=fields)
    chunks = list(
        Message.objects.filter(transmission_id=transmission_id, state=MessageState.QUEUED)
        .values_list("chunk", flat=True)
        .distinct()
        .order_by("chunk")
    )
    if not chunks:
        transmission_finish_if_done(transmission_id=transmission_id)
    return chunks


def _template_pin(transmission: Transmission) -> tuple[str, dict[str, Any]]:
    """``(version, snapshot)`` of the template version the transmission sends, from one read
    of the template row (so the number and the content are the same version).

    The snapshot is ``{"content": ..., "options": ...}``; when the template cannot be loaded
    (deleted, or no draft / published version any more: NotFound, NoDraftTemplate,
    NoPublishedTemplate) the version is "" and the snapshot ``{"error": {"type",
    "description"}}``, which ``transmissions.generation.prepare`` raises again, so every
    message fails with a ``generation_failure`` saying why (as when the template was read
    per process).
    """
    try:
        content, options, version = template_get_for_send(
            template_id=transmission.template_id, use_draft=transmission.use_draft_template
        )
    except errors.EngageError as exc:
        log.warning("transmission %s: template %s unavailable: %s", transmission.pk, transmission.template_id, exc)
        return "", {"error": {"type": type(exc).__name__, "description": exc.description}}
    return str(version), {"content": content, "options": options}


_PENDING_SQL = (
    "SELECT 1 FROM transmissions_message WHERE transmission_id = %s AND state IN ('queued', 'sending') LIMIT 1"
)


def transmission_finish_if_done(*, transmission_id: int) -> bool:
    """Mark the transmission Success (or Failed, when no message could be generated) once no
    message is queued or being sent, with its counters (one statement, so concurrent chunk
    tasks finishing together cannot both miss it)."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_SQL, [transmission_id])
        if cursor.fetchone() is not None:
            return False  # the common case, answered from the small msg_pending index
    return bool(transmissions_finish_group(transmission_ids=[transmission_id]))


# The SMTP transmissions of a group (the listener's: inline ``email_rfc822``, no template to
# pin), each returned once Generating. The listener stores them Generating
# (:func:`transmission_prepare`), so the common case reads the rows and writes nothing: no
# row lock, no new row version with its index entries (bench/RESULTS.md, "Session 18").
# One stored Submitted (by an earlier release) is moved to Generating here (two tasks for
# the same ids may both move it and both send its group: each message goes under its claim
# alone).
# The rows are found by their ids alone (the primary key): ``state`` and ``template_id`` are
# read only after, never offered to the planner as index conditions. With statistics behind a
# burst of injections (autovacuum not yet run, or off), it took ``state = 'submitted' AND
# template_id = ''`` for a rare pair and scanned every such index entry: 12-45 ms a group
# against 0.2 ms (bench/RESULTS.md, "session 16").
# The ``email_rfc822`` source, when a string (anything else stays in ``content``, for
# generation to refuse), comes apart as text (``->>``) and is put back into ``content`` in
# Python: inside the JSON, each message's 10 KB cost the server a JSON output with every
# quote and line end escaped and the worker a JSON parse undoing it (bench/RESULTS.md,
# "Session 19").
_SOURCE_COLUMN = "engage_rfc822_source"
_START_COLUMNS = ", ".join(
    f't."{field.column}"' for field in Transmission._meta.concrete_fields if field.name != "content"
)
_START_GROUP_SQL = f"""
WITH picked AS MATERIALIZED (
  SELECT t.id, t.state FROM transmissions_transmission t
   WHERE t.id = ANY(%(ids)s) AND t.source = %(smtp)s AND length(t.template_id) = 0),
started AS (
  UPDATE transmissions_transmission t SET state = %(generating)s, generation_start_time = now()
    FROM picked p WHERE t.id = p.id AND p.state = %(submitted)s
  RETURNING t.id)
SELECT {_START_COLUMNS},
       CASE WHEN s.text THEN t.content - %(rfc822)s ELSE t.content END AS content,
       CASE WHEN s.text THEN t.content ->> %(rfc822)s END AS {_SOURCE_COLUMN}
  FROM transmissions_transmission t JOIN picked p ON t.id = p.id
       CROSS JOIN LATERAL (SELECT jsonb_typeof(t.content -> %(rfc822)s) = 'string' AS text) s
 WHERE p.state = %(generating)s OR t.id IN (SELECT id FROM started)
 ORDER BY t.id
"""
# Success once at least one message was generated (handed to the relay, whatever it answered),
# Failed when none was (SPEC B §1.7 has no such state: see transmissions.models); one
# transmission or several (transmission_finish_if_done, transmissions_finish_group).
_FINISH_GROUP_SQL = f"""
UPDATE transmissions_transmission t
   SET state = CASE WHEN c.generated = 0 AND c.failed_gen > 0 THEN %(failed)s ELSE %(success)s END,
       generation_end_time = now(),
       num_generated = c.generated,
       num_failed_gen = c.failed_gen
  FROM (SELECT m.transmission_id, {_COUNTERS} FROM transmissions_message m
         WHERE m.transmission_id = ANY(%(ids)s) GROUP BY m.transmission_id) c
 WHERE t.id = c.transmission_id AND t.state = %(generating)s AND c.pending = 0
RETURNING t.id
"""


def _start_group_params(transmission_ids: Sequence[int]) -> dict[str, Any]:
    """The parameters of :data:`_START_GROUP_SQL` for ``transmission_ids``."""
    return {
        "ids": list(transmission_ids),
        "generating": TransmissionState.GENERATING,
        "submitted": TransmissionState.SUBMITTED,
        "smtp": TransmissionSource.SMTP,
        "rfc822": EMAIL_RFC822,
    }


def transmissions_start_group(*, transmission_ids: Sequence[int]) -> list[Transmission]:
    """The SMTP-injected transmissions among ``transmission_ids`` that are Generating, in id
    order, as full rows (their content: ``transmissions.sending.group_send`` prepares them),
    read in one statement. The listener stores them Generating, so this writes nothing; one
    stored Submitted by an earlier release is moved to Generating by the same statement.

    Only SMTP ones without a template are started here: they have no template to pin
    (:func:`transmission_start_generation` does that in a transaction of its own). An id
    that is missing, another kind of transmission, canceled or finished is left out; the
    caller gives those to :func:`transmission_start_generation`, which knows what to do
    with each. Safe to run twice (the UPDATE only moves ``submitted`` rows; a message is
    sent under its claim alone)."""
    rows = list(Transmission.objects.raw(_START_GROUP_SQL, _start_group_params(transmission_ids)))
    for transmission in rows:
        transmission.state = TransmissionState.GENERATING  # the SELECT saw a started row before the UPDATE
        source = getattr(transmission, _SOURCE_COLUMN)
        delattr(transmission, _SOURCE_COLUMN)
        if source is not None:
            transmission.content[EMAIL_RFC822] = source
    return rows


def transmissions_finish_group(*, transmission_ids: Sequence[int]) -> set[int]:
    """:func:`transmission_finish_if_done` for several transmissions in one statement: each
    Generating one without a queued or sending message becomes Success (Failed when none of
    its messages was generated) with its counters. Returns the ids it finished."""
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_GROUP_SQL,
            {"ids": list(transmission_ids), "success": TransmissionState.SUCCESS, "failed": TransmissionState.FAILED,
             "generating": TransmissionState.GENERATING},
        )  # fmt: skip
        return {pk for (pk,) in cursor.fetchall()}


def transmissions_due(
    *, now: datetime | None = None, grace_seconds: int = 60, unqueued_injections: bool = True
) -> list[int]:
    """Transmissions that should be generating and may have no task: scheduled ones whose
    time has come, immediate ones whose enqueue was lost (still submitted ``grace_seconds``
    after creation), and, unless ``unqueued_injections`` is false, SMTP injections
    (:func:`transmissions_unqueued_injections`). The scheduler enqueues them; starting
    twice is harmless (a message is sent under its claim alone)."""
    now = now or timezone.now()
    scheduled = Transmission.objects.filter(
        state=TransmissionState.SUBMITTED, start_time__isnull=False, start_time__lte=now
    ).values_list("pk", flat=True)
    stalled = Transmission.objects.filter(
        state=TransmissionState.SUBMITTED,
        start_time__isnull=True,
        created_at__lte=now - timedelta(seconds=grace_seconds),
    ).values_list("pk", flat=True)
    unqueued = transmissions_unqueued_injections(now=now, grace_seconds=grace_seconds) if unqueued_injections else []
    return list(scheduled) + list(stalled) + unqueued


def transmissions_unqueued_injections(
    *,
    now: datetime | None = None,
    grace_seconds: int = 60,
    crossed_since: datetime | None = None,
    period_seconds: int = 600,
) -> list[int]:
    """The SMTP injections (stored Generating) with a message still never claimed
    ``grace_seconds`` after they were stored: their group task was never queued (the broker
    down, the listener killed before it queued), or it waits behind others in a backlog.
    With ``crossed_since``, only those whose wait (from ``created_at`` to ``now``) passed a
    multiple of ``period_seconds`` after that time, chosen in the statement."""
    now = now or timezone.now()
    found = Transmission.objects.filter(
        state=TransmissionState.GENERATING,
        source=TransmissionSource.SMTP,
        created_at__lte=now - timedelta(seconds=grace_seconds),
    ).filter(Exists(Message.objects.filter(transmission_id=OuterRef("pk"), state=MessageState.QUEUED, attempts=0)))
    if crossed_since is not None:
        found = found.alias(
            crossed=RawSQL(
                "floor(extract(epoch FROM %s::timestamptz - created_at) / %s)"
                " > floor(extract(epoch FROM %s::timestamptz - created_at) / %s)",
                [now, period_seconds, crossed_since, period_seconds],
                output_field=BooleanField(),
            )
        ).filter(crossed=True)
    return list(found.values_list("pk", flat=True))
