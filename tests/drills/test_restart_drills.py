"""Crash/restart drills (issue 11, "Done when"): Redis or PostgreSQL restarted, or the worker
SIGKILLed, while Engage serves clicks or sends; afterwards the events in PostgreSQL equal the
redirects served and the messages handed off, with no duplicate ``event_id``.

Real processes (tests/drills/harness.py): the tracking gunicorn as scripts/Procfile's ``track``
line runs it, the Celery worker with beat, a private PostgreSQL and Redis that the drill
stops and starts again, an SMTP relay. Each drill prints nothing when it passes; a failure
says the counts ("14060 redirects served, 14047 click events") and carries the processes'
logs.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.drills.harness import Clicker, Stack, Tally, message_ids, tracked_links, wait_for

pytestmark = [pytest.mark.drill]

LOAD_SECONDS = 10.0  # clicks and opens, 8 connections
DOWN_AT, DOWN_FOR = 3.0, 3.0  # the server stops this far into the load, for this long
SEND_RECIPIENTS = 2000
INTERRUPT_AT = 300  # messages the relay has when the drill strikes
FINAL_STATES = ("Success", "Failed", "Canceled")


def _links(stack: Stack, recipients: int = 20) -> tuple[list, list]:
    """Click links and open pixels of a real transmission's delivered mail."""
    stack.transmission_send(recipients, name="drill-links")
    wait_for(lambda: len(stack.relay.received) >= recipients, 60, f"{recipients} messages at the relay")
    clicks, pixels = tracked_links(stack.relay.received)
    assert len(clicks) == recipients and len(pixels) == 2 * recipients, (len(clicks), len(pixels))
    return clicks, pixels


def _drive_through(stack: Stack, outage: str, stop, start) -> Tally:
    """Drive clicks and opens for LOAD_SECONDS; ``stop()`` DOWN_AT s in, ``start()`` DOWN_FOR
    s later. Asserts that requests were made while the server was down."""
    clicks, pixels = _links(stack)
    clicker = Clicker(stack.track_port, clicks, pixels, connections=8).start()
    try:
        began = time.monotonic()
        time.sleep(DOWN_AT)
        before = clicker.tally.answered
        stop()
        time.sleep(DOWN_FOR)
        during = clicker.tally.answered - before
        start()
        time.sleep(max(LOAD_SECONDS - (time.monotonic() - began), 1.0))
    finally:
        tally = clicker.stop()
    tally.during_outage = during
    assert during > 0, f"no request was answered while {outage} was down (the clicker stalled): {tally.summary()}"
    return tally


def _assert_tracking_landed(stack: Stack, tally: Tally) -> None:
    def opens(counts: Counter) -> int:
        return counts["open"] + counts["initial_open"]

    counts = stack.settle(lambda c: c["click"] >= tally.redirects and opens(c) >= tally.gifs)
    summary = (
        f"{tally.redirects} redirects served, {counts['click']} click events; "
        f"{tally.gifs} GIFs served, {opens(counts)} open events; "
        f"{counts['duplicate event_id']} duplicate event_id\n{tally.summary()}"
    )
    landed = (
        not tally.wrong
        and counts["click"] == tally.redirects
        and opens(counts) == tally.gifs
        and counts["duplicate event_id"] == 0
    )
    print(summary)  # shown with -s or -rP
    assert landed, summary


def test_redis_restarted_during_clicks_every_request_is_answered_and_every_hit_lands(stack):
    """Redis stops (``SHUTDOWN``) 3 s into 10 s of clicks and opens and starts again 3 s later,
    on the same port and data directory. ``SHUTDOWN`` fsyncs the append-only file, so Redis
    itself loses nothing it acknowledged (with ``appendfsync everysec`` a SIGKILL could lose
    its last second, which no application can make up for): what is lost is Engage's."""
    tally = _drive_through(stack, "Redis", stack.redis.shutdown, stack.redis.start)
    _assert_tracking_landed(stack, tally)


def test_postgres_restarted_during_clicks_every_request_is_answered_and_every_hit_lands(stack):
    """PostgreSQL stops (``pg_ctl stop -m fast``: every session is ended) 3 s into 10 s of
    clicks and opens, and starts again 3 s later."""
    tally = _drive_through(stack, "PostgreSQL", lambda: stack.pg.stop("fast"), stack.pg.start)
    _assert_tracking_landed(stack, tally)


#: What a client sees of a request the kill cut (no answer): these count for nothing.
CUT = frozenset({"ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "BrokenPipeError",
                 "IncompleteRead", "BadStatusLine", "TimeoutError"})  # fmt: skip


def test_tracking_server_killed_during_clicks_every_answered_hit_lands(stack):
    """The tracking server (granian and its workers, one process group) SIGKILLed 3 s into
    10 s of clicks and opens, started again 1 s later. Every hit that was answered has its
    event though its process died before shipping its hit log (tracking/hitlog.py: the lander
    takes the dead process's file over), none lands twice, and a hit the kill cut before
    its answer left at most its own event."""
    clicks, pixels = _links(stack)
    clicker = Clicker(stack.track_port, clicks, pixels, connections=8).start()
    try:
        began = time.monotonic()
        time.sleep(DOWN_AT)
        before = clicker.tally.redirects + clicker.tally.gifs
        stack.track.kill()
        time.sleep(1.0)
        stack.track.start()
        wait_for(lambda: stack._answers(stack.track_port), 60, "the tracking server to answer again")
        time.sleep(max(LOAD_SECONDS - (time.monotonic() - began), 1.0))
    finally:
        tally = clicker.stop()
    assert before > 0 and tally.redirects + tally.gifs > before, tally.summary()
    cut = sum(n for kind, n in tally.wrong.items() if kind in CUT)
    other = {kind: n for kind, n in tally.wrong.items() if kind not in CUT}
    counts = stack.settle(lambda c: c["click"] >= tally.redirects and c["open"] + c["initial_open"] >= tally.gifs)
    opens = counts["open"] + counts["initial_open"]
    summary = (f"{tally.redirects} redirects served, {counts['click']} click events; {tally.gifs} GIFs served, "
               f"{opens} open events; {cut} requests cut by the kill; {counts['duplicate event_id']} duplicate "
               f"event_id\n{tally.summary()}")  # fmt: skip
    print(summary)  # shown with -s or -rP
    assert not other, summary
    assert counts["click"] >= tally.redirects and opens >= tally.gifs, summary
    assert counts["click"] + opens - tally.redirects - tally.gifs <= cut, summary
    assert counts["duplicate event_id"] == 0, summary


def _send_and_strike(stack: Stack, strike) -> str:
    """POST a SEND_RECIPIENTS transmission, call ``strike()`` once the relay has
    INTERRUPT_AT messages, and wait for the transmission to end and every recipient to have
    its mail; the transmission id."""
    tid = stack.transmission_send(SEND_RECIPIENTS, name="drill-send")
    wait_for(lambda: len(stack.relay.received) >= INTERRUPT_AT, 120, f"{INTERRUPT_AT} messages at the relay", 0.01)
    at_strike = strike()
    assert at_strike < SEND_RECIPIENTS, f"the send had finished ({at_strike} messages) before the drill struck"

    def done() -> bool:
        return (stack.transmission_state(tid) in FINAL_STATES
                and len({r.rcpt_tos[0] for r in stack.relay.received}) >= SEND_RECIPIENTS)  # fmt: skip

    wait_for(done, 150, lambda: (f"the transmission to end (state {stack.transmission_state(tid)!r}, "
                                 f"{len({r.rcpt_tos[0] for r in stack.relay.received})} of {SEND_RECIPIENTS} "
                                 f"recipients at the relay, {at_strike} when the drill struck)"), 0.25)  # fmt: skip
    return tid


def _assert_send_landed(stack: Stack, tid: str) -> None:
    counts = stack.settle(lambda c: c["injection"] >= SEND_RECIPIENTS and c["delivery"] >= SEND_RECIPIENTS)
    handed = message_ids(stack.relay.received)
    injections = stack.per_message("injection", tid)
    deliveries = stack.per_message("delivery", tid)
    state = stack.transmission_state(tid)
    repeated = len(stack.relay.received) - len(handed)
    twice = {mid: n for mid, n in {**injections, **deliveries}.items() if n > 1}
    summary = (
        f"{len(handed)} messages handed off (distinct Message-IDs at the relay; {repeated} repeated), "
        f"{injections.total()} injection events, {deliveries.total()} delivery events; "
        f"{len(handed - set(injections))} handed off without an injection, "
        f"{len(set(injections) - handed)} injections never handed off, "
        f"{len(twice)} messages with more than one injection or delivery (e.g. {dict(list(twice.items())[:3])}); "
        f"{counts['duplicate event_id']} duplicate event_id; transmission {state}; all events {dict(counts)}"
    )
    landed = (
        len(handed) == SEND_RECIPIENTS
        and injections.total() == deliveries.total() == len(handed)
        and set(injections) == set(deliveries) == handed
        and not twice
        and counts["duplicate event_id"] == 0
        and state == "Success"
    )
    print(summary)  # shown with -s or -rP
    assert landed, summary


def test_redis_restarted_during_a_send_every_message_is_delivered_and_its_events_land(stack):
    """Redis stops (``SHUTDOWN``, see the click drill) while a 2,000-recipient transmission is
    being sent, and starts again 3 s later; every message reaches the relay and has exactly
    one ``injection`` and one ``delivery`` event."""

    def strike() -> int:
        stack.redis.shutdown()
        at_strike = len(stack.relay.received)
        time.sleep(DOWN_FOR)
        stack.redis.start()
        return at_strike

    _assert_send_landed(stack, _send_and_strike(stack, strike))


def test_worker_killed_mid_send_every_message_has_exactly_one_injection(stack):
    """The Celery worker (main process, pool and beat) is SIGKILLed mid-send from another
    process, as an OOM kill would, and started again: its claimed messages are claimed again
    and every message handed off has exactly one ``injection`` (re-claimed ones included)
    and one ``delivery``. A message the relay had when the worker died may reach the relay
    twice (README, "Delivery guarantee"): it counts once, by its Message-ID."""

    def strike() -> int:
        stack.worker.kill(after=random.uniform(0.05, 0.25))
        time.sleep(0.5)  # a killed process's sockets close once the kernel has torn it down
        at_strike = len(stack.relay.received)
        stack.worker_restart()
        return at_strike

    _assert_send_landed(stack, _send_and_strike(stack, strike))
