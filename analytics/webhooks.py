"""Webhooks (SPEC B §8): services that create, change and deliver them.

Flow: the lander (``analytics.rollups.webhook_feed_append``) appends each landed event of a
type some active webhook wants to ``analytics_webhook_feed`` ONCE, in the landing
transaction, so landing costs the same with one webhook or a hundred. Feed positions are
commit-ordered (an advisory lock held from drawing them to commit), so each webhook's cursor
(``Webhook.feed_position``) can follow the feed without ever passing an event that has yet
to commit, whatever order landers commit in. ``webhook_batches_build`` (the webhooks queue,
beat's ``webhooks_dispatch`` in tasks.py) cuts each webhook's batches from the feed after its
cursor, of the types it wants, and moves the cursor in the same transaction; webhooks at the
same cursor that want the same types are cut together and share one stored body
(``WebhookPayload``), so fan-out stores each body once per distinct event filter. Replays
queue events for one webhook in ``analytics_webhook_pending``, drained the same way.

A batch's body is frozen (same bytes and ``event_id`` values on every retry);
``webhook_batch_deliver`` claims a due batch with a conditional UPDATE, POSTs it, and
records the outcome with the next attempt time (exponential backoff until
``ENGAGE_WEBHOOK_RETRY_HOURS``).

A webhook gets the events landed from about when it is created or reactivated (its cursor
starts at the feed's head), none while it is inactive, and only the types it wants when its
batch is cut.
"""

from __future__ import annotations

import base64
import functools
import http
import http.client
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from analytics import selectors, targets
from analytics.models import (
    FEED_HEAD,
    BatchState,
    Webhook,
    WebhookAuthType,
    WebhookBatch,
    WebhookPayload,
    WebhookPendingEvent,
)
from analytics.serialize import event_record
from engage import errors
from mailcore.events import NAMES

log = logging.getLogger(__name__)

TEST_BODY: list[dict[str, Any]] = [{"msys": {}}]
# The create/update test POST and ``validate`` run in a web request: all their outbound
# work (oauth2 token, resolution, connect, answer) ends within this many seconds (or
# ENGAGE_WEBHOOK_TIMEOUT when that is shorter).
TEST_TIMEOUT_SECONDS = 5.0
# What a caller learns of any attempt that got no HTTP answer. Refused, reset, timed out,
# TLS failure and a non-HTTP answer all read the same, so failed creates cannot tell a
# closed port from an open one that speaks something else (the detail goes to the log).
NO_ANSWER = "no HTTP response"


@dataclass
class Response:
    """The outcome of one POST. ``status``: the HTTP status, None without an HTTP answer;
    ``reason``: the standard phrase for ``status`` (never the target's own text);
    ``failure``: "" for 2xx, else ``"HTTP 503 Service Unavailable"``, ``NO_ANSWER`` or
    ``"refused: ..."``; ``refused``: the target was not connected to (internal address,
    unresolvable); ``body``: only when asked for (the oauth2 token answer)."""

    status: int | None
    reason: str = ""
    failure: str = ""
    body: str = ""
    refused: bool = False


@functools.lru_cache(maxsize=8)
def _allow_list_parse(entries: tuple[str, ...]) -> targets.AllowList:
    return targets.AllowList.parse(entries)


def allow_list() -> targets.AllowList:
    """``settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS`` parsed (ValueError naming a bad entry)."""
    return _allow_list_parse(tuple(settings.ENGAGE_WEBHOOK_ALLOWED_TARGETS))


def _connect_first(
    addresses: list[targets.IPAddress], address: tuple, timeout: Any, source_address: Any = None
) -> socket.socket:
    """``socket.create_connection`` to the first of the checked ``addresses`` that
    accepts, on ``address``'s port; the host name is never resolved again."""
    error: OSError = OSError("no address to connect to")
    for ip in addresses:
        try:
            return socket.create_connection((str(ip), address[1]), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to checked addresses while ``Host`` carries the target's host."""

    def __init__(self, host: str, port: int, *, addresses: list[targets.IPAddress], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = functools.partial(_connect_first, addresses)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """As _PinnedHTTPConnection; TLS SNI and certificate verification use the target's
    host (the default context: CERT_REQUIRED, check_hostname)."""

    def __init__(self, host: str, port: int, *, addresses: list[targets.IPAddress], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = functools.partial(_connect_first, addresses)


def _cut(conn: http.client.HTTPConnection, cut: threading.Event) -> None:
    """End a POST that overran its deadline: a blocked read returns at once. (The answer
    read so far may then look complete to http.client, which ends headers at EOF: ``cut``
    tells the caller it is not.)"""
    cut.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def http_post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None, read_body: bool = False
) -> Response:
    """POST ``body`` to ``url`` (header names sent as given) and return a Response; never
    raises for what the target does.

    The target must pass ``analytics.targets``: http/https, and every address its host
    resolves to public or allowed by ``ENGAGE_WEBHOOK_ALLOWED_TARGETS``; else the answer
    is ``refused`` and nothing is connected to. The connection goes to a checked address
    (no second lookup: DNS rebinding cannot move it). Redirects are not followed (a 3xx is
    a failure). Resolution, connect, sending and the answer's status line and headers all
    end within ``timeout`` seconds (default ``ENGAGE_WEBHOOK_TIMEOUT``; SPEC B §8.3) or the
    attempt is cut and has no HTTP answer. The answer's headers are never kept; its body
    (first 64 KiB) only with ``read_body``."""
    timeout = float(timeout or settings.ENGAGE_WEBHOOK_TIMEOUT)
    deadline = time.monotonic() + timeout
    try:
        target = targets.target_parse(url)
        addresses = targets.target_resolve(target, allowed=allow_list(), timeout=timeout)
    except targets.TargetRefused as exc:
        return Response(None, failure=f"refused: {exc}", refused=True)
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    left = max(deadline - time.monotonic(), 0.05)
    conn = connection_class(target.host, target.port, addresses=addresses, timeout=left)
    cut = threading.Event()
    watchdog = threading.Timer(left, _cut, [conn, cut])
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", target.request_path, body=body, headers={**headers, "Content-Length": str(len(body))})
        answer = conn.getresponse()
        text = answer.read(65536).decode("utf-8", "replace") if read_body else ""
        if cut.is_set():
            raise TimeoutError(f"no complete answer within {timeout:g} s")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        log.info(
            "webhook POST to %s port %s: no HTTP answer (%s: %s)", target.host, target.port, type(exc).__name__, exc
        )
        return Response(None, failure=NO_ANSWER)
    finally:
        watchdog.cancel()
        conn.close()
    reason = _phrase(answer.status)
    failure = "" if 200 <= answer.status < 300 else f"HTTP {answer.status} {reason}".rstrip()
    return Response(answer.status, reason, failure, text)


# --- auth -------------------------------------------------------------------------------
def oauth2_token_fetch(details: dict, *, timeout: float | None = None) -> dict:
    """POST ``details["body"]`` (form-encoded, as OAuth2 token endpoints expect) to
    ``details["url"]`` (which passes the same address policy as targets); returns
    ``{"access_token", "expires_in"}`` or raises InvalidParams."""
    body = urllib.parse.urlencode(details.get("body") or {}).encode()
    answer = http_post(
        details["url"], body, {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        timeout=timeout, read_body=True,
    )  # fmt: skip
    try:
        data = json.loads(answer.body) if answer.status == 200 else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict) or not data.get("access_token"):
        raise errors.InvalidParams(f"POST to webhook tokens URL failed ({answer.failure or answer.status})")
    return {"access_token": data["access_token"], "expires_in": data.get("expires_in")}


#: Header names a webhook's ``custom_headers`` may not set, compared without case: the
#: request's framing and routing (RFC 9112 §6, RFC 9110 §7.2, §7.6.1: a second
#: Content-Length or a Transfer-Encoding smuggles a request, Host picks a virtual host) and
#: the headers Engage writes itself.
RESERVED_HEADERS = frozenset(
    {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
        "expect", "proxy-authorization", "proxy-connection", "content-type", "content-encoding",
        "x-messagesystems-batch-id", "x-messagesystems-webhook-token",
    }
)  # fmt: skip


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.1 token
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _headers(hook: Webhook, batch_id: str | None = None) -> dict[str, str]:
    """The POST's headers: the webhook's ``custom_headers`` (one per name whatever its case,
    never a RESERVED_HEADERS name, even from a row stored before that rule), then Engage's,
    each replacing a custom header of the same name."""
    headers: dict[str, str] = {}
    for name, value in (hook.custom_headers or {}).items():
        name, value = str(name), str(value)
        if name.lower() in RESERVED_HEADERS or any(n.lower() == name.lower() for n in headers):
            continue
        if _HEADER_NAME.fullmatch(name) and not _CONTROL.search(value):
            headers[name] = value

    def put(name: str, value: str) -> None:
        for existing in [n for n in headers if n.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value

    put("Content-Type", "application/json")
    if not any(n.lower() == "user-agent" for n in headers):
        headers["User-Agent"] = "Engage-Webhooks/1"
    if batch_id:
        put("X-MessageSystems-Batch-ID", batch_id)
    if hook.auth_token:
        put("X-MessageSystems-Webhook-Token", hook.auth_token)
    if hook.auth_type == WebhookAuthType.BASIC:
        creds = hook.auth_credentials or {}
        raw = f"{creds.get('username', '')}:{creds.get('password', '')}".encode()
        put("Authorization", "Basic " + base64.b64encode(raw).decode())
    elif hook.auth_type == WebhookAuthType.OAUTH2 and (hook.auth_credentials or {}).get("access_token"):
        put("Authorization", f"Bearer {hook.auth_credentials['access_token']}")
    return headers


def _test_timeout() -> float:
    return min(TEST_TIMEOUT_SECONDS, float(settings.ENGAGE_WEBHOOK_TIMEOUT))


def _post_with_auth(
    hook: Webhook,
    body: bytes,
    batch_id: str | None = None,
    *,
    refetch: bool = True,
    save_token: bool = True,
    budget: float | None = None,
) -> Response:
    """POST as ``hook`` authenticates; for oauth2 a 400/401 means the token expired: fetch
    a new one and try once more (with ``refetch``). With ``budget``, everything ends
    within that many seconds; without, each POST has ``ENGAGE_WEBHOOK_TIMEOUT``."""
    deadline = None if budget is None else time.monotonic() + budget

    def left() -> float | None:
        return None if deadline is None else max(deadline - time.monotonic(), 0.05)

    answer = http_post(hook.target, body, _headers(hook, batch_id), timeout=left())
    if refetch and hook.auth_type == WebhookAuthType.OAUTH2 and answer.status in (400, 401):
        try:
            hook.auth_credentials = oauth2_token_fetch(hook.auth_request_details, timeout=left())
        except errors.EngageError:
            return answer
        if save_token and hook.pk and Webhook.objects.filter(pk=hook.pk).exists():
            hook.save(update_fields=["auth_credentials"])
        answer = http_post(hook.target, body, _headers(hook, batch_id), timeout=left())
    return answer


def _refused(answer: Response, what: str) -> errors.InvalidParams:
    return errors.InvalidParams(f"'{what}' refused: {answer.failure.removeprefix('refused: ')}")


# --- create / update / delete -----------------------------------------------------------
def _clean(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in ("name", "target", "events"):
        if name not in data and not partial:
            raise errors.RequiredFieldMissing(f"'{name}' is required")
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise errors.InvalidData("'name' must be a non-empty string")
        fields["name"] = data["name"].strip()
    if "target" in data:
        target = data["target"]
        try:
            targets.target_parse(target if isinstance(target, str) else "")
        except targets.TargetRefused as exc:
            raise errors.InvalidData(f"'target' must be an http or https URL: {exc}") from None
        fields["target"] = target
    if "events" in data:
        events = data["events"]
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise errors.InvalidData("'events' must be a non-empty array of event types")
        unknown = [e for e in events if e not in NAMES]
        if unknown:
            raise errors.InvalidData(f"unknown event type(s): {', '.join(unknown)}")
        fields["events"] = sorted(set(events))
    if "auth_type" in data:
        if data["auth_type"] not in WebhookAuthType.values:
            raise errors.InvalidData("'auth_type' must be none, basic or oauth2")
        fields["auth_type"] = data["auth_type"]
    for name in ("auth_token",):
        if name in data:
            fields[name] = str(data[name])
    for name in ("auth_request_details", "auth_credentials", "custom_headers"):
        if name in data:
            if not isinstance(data[name], dict):
                raise errors.InvalidData(f"'{name}' must be an object")
            fields[name] = data[name]
    if "active" in data:
        fields["active"] = bool(data["active"])
    return fields


def _check_auth(hook: Webhook) -> None:
    if hook.auth_type == WebhookAuthType.BASIC and not (hook.auth_credentials or {}).get("username"):
        raise errors.InvalidData("basic auth needs auth_credentials.username")
    if hook.auth_type == WebhookAuthType.OAUTH2 and not (hook.auth_request_details or {}).get("url"):
        raise errors.InvalidData("oauth2 auth needs auth_request_details.url")


def _test_post(hook: Webhook) -> None:
    """The create/update test POST (SPEC B §8.1: anything but 200 fails the call with 400
    and nothing is saved), token fetch included, within ``TEST_TIMEOUT_SECONDS``. The
    error tells the status, or only that there was no HTTP answer (NO_ANSWER)."""
    deadline = time.monotonic() + _test_timeout()
    if hook.auth_type == WebhookAuthType.OAUTH2:
        hook.auth_credentials = oauth2_token_fetch(hook.auth_request_details, timeout=_test_timeout())
    budget = max(deadline - time.monotonic(), 0.05)
    answer = _post_with_auth(hook, json.dumps(TEST_BODY).encode(), refetch=False, budget=budget)
    if answer.refused:
        raise _refused(answer, "target")
    if answer.status != 200:
        raise errors.InvalidParams(f"Test POST to endpoint failed ({answer.failure}); the webhook was not saved")


def webhook_create(*, data: dict[str, Any]) -> Webhook:
    """Validate, fetch an oauth2 token, send the test POST (anything but 200: 400, nothing saved), save."""
    hook = Webhook(**_clean(data, partial=False))
    _check_auth(hook)
    _test_post(hook)
    hook.save()
    return hook


def webhook_update(*, hook: Webhook, data: dict[str, Any]) -> Webhook:
    """Partial update; a new target or new auth is tested first (failure: 400, nothing
    changed). A webhook made active again gets the events landed from then on, none of
    those landed while it was inactive (its feed cursor moves to the feed's head)."""
    fields = _clean(data, partial=True)
    retest = any(
        fields.get(k, getattr(hook, k)) != getattr(hook, k)
        for k in ("target", "auth_type", "auth_request_details", "auth_credentials", "auth_token")
    )
    reactivated = fields.get("active") is True and not hook.active
    for name, value in fields.items():
        setattr(hook, name, value)
    _check_auth(hook)
    if retest:
        _test_post(hook)
        fields["auth_credentials"] = hook.auth_credentials
    with transaction.atomic():
        if fields:
            hook.save(update_fields=list(fields))
        if reactivated:
            Webhook.objects.filter(pk=hook.pk).update(feed_position=FEED_HEAD)
    return hook


def webhook_delete(*, hook: Webhook) -> None:
    """Hide the webhook and stop new batches; batches already made still drain."""
    with transaction.atomic():
        hook.deleted_at, hook.active = timezone.now(), False
        hook.save(update_fields=["deleted_at", "active"])
        WebhookPendingEvent.objects.filter(webhook_id=hook.pk).delete()


def webhook_validate(*, hook: Webhook, message: Any) -> dict[str, Any]:
    """POST ``message`` to the target (SPEC B §8.2 ``validate``) within
    ``TEST_TIMEOUT_SECONDS``. Returns ``{"msg", "response": {"status", "reason"}}``:
    the status code and its standard phrase only (``status`` None and ``reason``
    NO_ANSWER without an HTTP answer); unlike SparkPost, never the target's headers or
    body, so the endpoint cannot read a service's answer through Engage. Raises
    InvalidParams (400) when the target is refused (internal address, unresolvable)."""
    answer = _post_with_auth(hook, json.dumps(message).encode(), budget=_test_timeout())
    if answer.refused:
        raise _refused(answer, "target")
    ok = answer.status == 200
    return {
        "msg": "Test POST to endpoint succeeded" if ok else "Test POST to endpoint failed",
        "response": {"status": answer.status, "reason": answer.reason if answer.status else answer.failure},
    }


def webhook_replay(
    *, hook: Webhook, start: datetime | None = None, end: datetime | None = None, since_event_id: str | None = None
) -> int:
    """Queue again the stored events of the webhook's types in [start, end), or after the
    event ``since_event_id`` (in (timestamp, id) order); returns how many."""
    with connection.cursor() as cursor:
        if since_event_id is not None:
            cursor.execute(
                "SELECT timestamp, id FROM tracking_event WHERE event_id = %s ORDER BY timestamp LIMIT 1",
                [since_event_id],
            )
            found = cursor.fetchone()
            if found is None:
                raise errors.InvalidParams(f"no stored event has event_id '{since_event_id}'")
            where, params = "(timestamp, id) > (%s, %s)", list(found)
        else:
            where, params = "timestamp >= %s AND timestamp < %s", [start, end]
        cursor.execute(
            "INSERT INTO analytics_webhook_pending (webhook_id, event_pk, event_timestamp, created_at) "
            f"SELECT %s, id, timestamp, now() - interval '1 day' FROM tracking_event WHERE type = ANY(%s) AND {where} "
            "ORDER BY timestamp, id",
            [hook.pk, list(hook.events), *params],
        )
        return cursor.rowcount


# --- batching and delivery ------------------------------------------------------------
def _batches_make(*, hooks: list[tuple[Any, str]], keys: list[tuple[int, datetime]], now: datetime) -> list[str]:
    """One frozen batch per webhook in ``hooks`` ((id, target) pairs) holding the stored
    events ``keys`` ((id, timestamp) pairs), all sharing one body; returns their ids (none
    when none of the events is stored any more: retention dropped them)."""
    records = [event_record(row) for row in selectors.events_fetch(pks=keys)]
    if not records:
        return []
    body = WebhookPayload.objects.create(content=json.dumps(records, separators=(",", ":")).encode(), created_at=now)
    expires = now + timedelta(hours=settings.ENGAGE_WEBHOOK_RETRY_HOURS)
    batches = [
        WebhookBatch(
            webhook_id=hook_id,
            target=target,
            body=body,
            batch_size=len(records),
            created_at=now,
            next_attempt_at=now,
            expires_at=expires,
        )
        for hook_id, target in hooks
    ]
    WebhookBatch.objects.bulk_create(batches)
    return [str(batch.pk) for batch in batches]


def _pending_batches_build(*, now: datetime, due: datetime, size: int, force: bool) -> list[str]:
    """Batches from ``analytics_webhook_pending`` (replays, and rows queued before the feed)."""
    made: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT webhook_id, count(*), min(created_at) FROM analytics_webhook_pending GROUP BY webhook_id"
        )
        waiting = cursor.fetchall()
    for webhook_id, count, oldest in waiting:
        hook = Webhook.objects.filter(pk=webhook_id).first()
        if hook is None:
            continue
        while count > 0 and (count >= size or force or oldest <= due):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    # picked once (MATERIALIZED): a rescanned IN subquery could take more than LIMIT
                    "WITH picked AS MATERIALIZED (SELECT id FROM analytics_webhook_pending WHERE webhook_id = %s "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
                    "DELETE FROM analytics_webhook_pending WHERE id IN (SELECT id FROM picked) "
                    "RETURNING event_pk, event_timestamp",
                    [webhook_id, size],
                )
                keys = cursor.fetchall()
                if not keys:
                    break
                made += _batches_make(hooks=[(webhook_id, hook.target)], keys=keys, now=now)
            count -= len(keys)
    return made


# The active webhooks by cursor and event filter: each group's batches are cut together.
_FEED_GROUPS = """
SELECT feed_position, events::text[], array_agg(id ORDER BY id) FROM analytics_webhook
WHERE active AND deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2"""
# Lock the group's webhooks that are still at its cursor and filter, in id order. A row
# another builder moved meanwhile fails the re-check once its lock is released and drops
# out (never cut twice); waiting, rather than skipping, keeps the group's webhooks together.
_FEED_GROUP_LOCK = """
SELECT id, target FROM analytics_webhook
WHERE id = ANY(%s) AND active AND deleted_at IS NULL AND feed_position = %s AND events::text[] = %s::text[]
ORDER BY id FOR UPDATE"""
_FEED_NEXT = """
SELECT position, event_pk, event_timestamp, landed_at <= %s FROM analytics_webhook_feed
WHERE position > %s AND position <= %s AND type = ANY(%s) ORDER BY position LIMIT %s"""
# Rows every active webhook's cursor has passed (all rows up to the head when none is active).
_FEED_PRUNE = """
DELETE FROM analytics_webhook_feed WHERE position <= LEAST(
  %s, (SELECT min(feed_position) FROM analytics_webhook WHERE active AND deleted_at IS NULL))"""


def _feed_group_build(
    *, position: int, events: list[str], ids: list[Any], head: int, now: datetime, due: datetime, size: int, force: bool
) -> list[str]:
    """Cut the batches of one group of webhooks (same cursor ``position``, same ``events``)
    from the feed up to ``head``: a full batch per ``size`` events, then the rest once the
    oldest waited long enough (or ``force``), moving the group's cursor with each batch in
    the same transaction. With nothing of its types left up to ``head`` the cursor moves to
    ``head`` too, so caught-up webhooks share a cursor (and their batches) next run."""
    made: list[str] = []
    while position < head:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_FEED_GROUP_LOCK, [ids, position, events])
            hooks = cursor.fetchall()
            if not hooks:
                break
            cursor.execute(_FEED_NEXT, [due, position, head, events, size])
            rows = cursor.fetchall()
            full = len(rows) == size
            if rows and not full and not force and not any(waited for *_, waited in rows):
                break  # a partial batch whose oldest event has not waited long enough
            if rows:
                made += _batches_make(hooks=hooks, keys=[(row[1], row[2]) for row in rows], now=now)
            position = rows[-1][0] if full else head
            cursor.execute(
                "UPDATE analytics_webhook SET feed_position = %s WHERE id = ANY(%s)",
                [position, [hook_id for hook_id, _ in hooks]],
            )
            ids = [hook_id for hook_id, _ in hooks]
    return made


def webhook_batches_build(*, now: datetime | None = None, force: bool = False) -> list[str]:
    """Turn waiting events into batches, for every active webhook: a full batch whenever
    ``ENGAGE_WEBHOOK_BATCH_SIZE`` of its events wait, and the rest once the oldest has waited
    ``ENGAGE_WEBHOOK_BATCH_SECONDS`` (or ``force``); then drop the feed rows every active
    webhook has passed. Returns the new batch ids. Runs on the webhooks queue."""
    now = now or timezone.now()
    size = settings.ENGAGE_WEBHOOK_BATCH_SIZE
    due = now - timedelta(seconds=settings.ENGAGE_WEBHOOK_BATCH_SECONDS)
    made = _pending_batches_build(now=now, due=due, size=size, force=force)
    with connection.cursor() as cursor:
        # Everything up to the newest visible position has committed (FEED_LOCK): a fixed
        # set of rows for this run, whatever lands meanwhile.
        cursor.execute("SELECT engage_webhook_feed_head()")
        head = cursor.fetchone()[0]
        cursor.execute(_FEED_GROUPS)
        groups = cursor.fetchall()
    for position, events, ids in groups:
        made += _feed_group_build(
            position=position, events=events, ids=ids, head=head, now=now, due=due, size=size, force=force
        )
    with connection.cursor() as cursor:
        cursor.execute(_FEED_PRUNE, [head])
    return made


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.ENGAGE_WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 3600))


def _lease(now: datetime) -> datetime:
    """How long a queued or running attempt holds its batch: past it, the batch is due again
    (a lost task, a worker killed mid-POST)."""
    return now + timedelta(seconds=settings.ENGAGE_WEBHOOK_TIMEOUT * 3 + 30)


def webhook_batch_deliver(*, batch_id: str, now: datetime | None = None, lease: datetime | None = None) -> str | None:
    """POST one batch (claimed by a conditional UPDATE so two workers never both send it):
    a due one, or with ``lease`` the one :func:`webhook_batches_lease_due` queued with that
    lease. Returns its new state, or None when it was not claimable. A batch of a webhook
    deleted or deactivated since it was cut is not sent: it ends ``expired``."""
    now = now or timezone.now()
    claimable = (
        WebhookBatch.objects.filter(pk=batch_id, state=BatchState.PENDING, next_attempt_at=lease)
        if lease is not None
        else _due(now).filter(pk=batch_id)
    )
    claimed = claimable.update(next_attempt_at=_lease(now), last_attempt_at=now)
    if not claimed:
        return None
    batch = WebhookBatch.objects.select_related("body").get(pk=batch_id)
    hook = Webhook.objects.get(pk=batch.webhook_id)
    if hook.deleted_at is not None or not hook.active:
        batch.state = BatchState.EXPIRED
        batch.failure = "webhook deleted" if hook.deleted_at is not None else "webhook inactive"
        batch.save(update_fields=["state", "failure"])
        return batch.state
    hook.target = batch.target or hook.target
    if batch.body is not None:
        body = bytes(batch.body.content)
    else:  # a batch made before migration 0005
        body = json.dumps(batch.payload, separators=(",", ":")).encode()
    began = time.perf_counter()
    answer = _post_with_auth(hook, body, str(batch.pk))
    batch.latency_ms = int((time.perf_counter() - began) * 1000)
    batch.attempts += 1
    batch.response_code = str(answer.status or "")
    batch.failure = answer.failure
    if answer.status is not None and 200 <= answer.status < 300:
        batch.state = BatchState.DELIVERED
        Webhook.objects.filter(pk=hook.pk).update(last_successful=now)
    else:
        batch.next_attempt_at = now + _backoff(batch.attempts)
        if batch.next_attempt_at >= batch.expires_at:
            batch.state = BatchState.EXPIRED
        Webhook.objects.filter(pk=hook.pk).update(last_failure=now)
    batch.save(update_fields=["latency_ms", "attempts", "response_code", "failure", "state", "next_attempt_at"])
    return batch.state


def _retry_window_open(now: datetime) -> Q:
    """Batches that may still be attempted: inside their retry window, or never attempted
    (a batch made before an outage of Engage itself gets at least one try)."""
    return Q(expires_at__gt=now) | Q(last_attempt_at__isnull=True)


def _pending_now(now: datetime) -> QuerySet[WebhookBatch]:
    """Pending batches whose next attempt is due (or whose attempt's lease ran out)."""
    return WebhookBatch.objects.filter(state=BatchState.PENDING, next_attempt_at__lte=now)


def _due(now: datetime) -> QuerySet[WebhookBatch]:
    """The batches an attempt may claim now."""
    return _pending_now(now).filter(_retry_window_open(now))


def webhook_batches_expire(*, now: datetime | None = None) -> int:
    """Expire the pending batches past their retry window whose last attempt is over. A
    failed attempt expires its batch itself; this catches the attempts that never recorded
    an outcome (worker killed mid-POST, an error after the claim), whose batch would
    otherwise be claimed again after every lease, forever. Returns how many."""
    now = now or timezone.now()
    return _pending_now(now).exclude(_retry_window_open(now)).update(state=BatchState.EXPIRED)


def webhook_batches_lease_due(*, now: datetime | None = None, limit: int = 100) -> list[tuple[str, datetime]]:
    """Lease the due batches for delivery tasks: ``[(batch_id, lease)]``. Each is due again
    only when its lease runs out, so a dispatch every second queues one task per batch, not
    one per second while a slow target holds the queue (found by an attacker: 20 queued
    copies per batch)."""
    now = now or timezone.now()
    lease = _lease(now)
    with transaction.atomic():
        ids = list(
            _due(now)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            WebhookBatch.objects.filter(pk__in=ids).update(next_attempt_at=lease)
    return [(str(pk), lease) for pk in ids]
