"""Idle Celery workers log nothing at INFO (issue 15, Deliver 7): beat's housekeeping tasks
are logged only when a run did something; every other line passes (engage/celery.py). The
pool's children leave SIGTERM to the main process, so a supervisor that signals the whole
process group (honcho) does not kill a task midway."""

from __future__ import annotations

import logging
import os
import signal

from django.conf import settings

from engage.celery import HousekeepingLogFilter, _children_leave_sigterm_to_the_main_process
from tests.helpers import fails_if_hung

HOUSEKEEPING = sorted({entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()})


def record(logger: str, msg: str, args: object = None, level: int = logging.INFO, **data: object) -> logging.LogRecord:
    made = logging.LogRecord(logger, level, __file__, 1, msg, args, None)
    if data:
        made.data = data
    return made


def test_beat_queues_the_tasks_the_filter_names():
    assert {"analytics.land_events", "transmissions.start_due", "analytics.webhooks_dispatch"} <= set(HOUSEKEEPING)


def test_housekeeping_that_found_nothing_to_do_is_not_logged():
    quiet = HousekeepingLogFilter(HOUSEKEEPING)
    for name in HOUSEKEEPING:
        assert not quiet.filter(record("celery.worker.strategy", "Task %(name)s[%(id)s] received", name=name, id="1"))
        for nothing in ("0", "None", 0, None):
            done = record("celery.app.trace", "Task %(name)s succeeded", name=name, return_value=nothing)
            assert not quiet.filter(done)
        assert not quiet.filter(record("celery.worker.request", "Discarding revoked task: %s[%s]", (name, "1")))


def test_work_done_other_tasks_and_warnings_are_logged():
    quiet = HousekeepingLogFilter(HOUSEKEEPING)
    landed = record("celery.app.trace", "Task %(name)s succeeded", name="analytics.land_events", return_value="12")
    assert quiet.filter(landed)
    for name in ("transmissions.generate", "transmissions.send_chunk", "analytics.webhook_batch_deliver"):
        assert quiet.filter(record("celery.worker.strategy", "Task %(name)s[%(id)s] received", name=name, id="1"))
        assert quiet.filter(record("celery.app.trace", "Task %(name)s succeeded", name=name, return_value="0"))
        assert quiet.filter(record("celery.worker.request", "Discarding revoked task: %s[%s]", (name, "1")))
    failed = record("celery.app.trace", "Task %(name)s raised", level=logging.ERROR, name="analytics.land_events")
    assert quiet.filter(failed)
    assert quiet.filter(record("celery.apps.worker", "%s ready.", ("send-1@host",)))


def test_a_pool_child_ignores_sigterm():
    with fails_if_hung(30):
        pid = os.fork()
        if pid == 0:  # the child: what Celery's worker_process_init runs, then a SIGTERM
            try:
                _children_leave_sigterm_to_the_main_process()
                os.kill(os.getpid(), signal.SIGTERM)
                os._exit(7)
            finally:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7
