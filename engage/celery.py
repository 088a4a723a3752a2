"""The Celery app. Tasks live in each app's ``tasks.py`` and are found by autodiscovery.

A worker (with or without ``--beat``) and a standalone beat run every system check when they
start (``engage/checks.py``) and exit with its message on an error, as ``manage.py`` and
gunicorn do: a worker must never sign links with a missing or malformed key.

An idle worker logs nothing at INFO (issue 15): beat queues its housekeeping tasks every
second or few (``CELERY_BEAT_SCHEDULE``: landing events, scheduled sends, recovery, webhook
batches), and Celery would log each one's "received" and "succeeded" lines (four to five a
second). :class:`HousekeepingLogFilter` drops those lines when the run found nothing to do;
every other task, a housekeeping run that did something (landed 12 events, started 1
transmission) and every warning or error are logged as before.

The prefork pool's children ignore SIGTERM: the main process alone answers it with a warm
shutdown (running tasks end, then the children exit). A process supervisor that signals the
whole process group (systemd's default ``KillMode=control-group``, honcho as shipped) would
otherwise kill a child in the middle of a task (``WorkerLostError``; with late acks its task
runs again). SIGKILL, and the main process's death (Celery sets each child's parent-death
signal), still end them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterable
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engage.settings")

app = Celery("engage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _refuse_to_start_on_setting_errors(**kwargs: Any) -> None:
    import django
    from django.core.management.base import SystemCheckError

    from engage.checks import startup_check  # engage/__init__ loads this module before settings exist

    django.setup()
    try:
        startup_check()
    except SystemCheckError as exc:
        print(exc, file=sys.__stderr__, flush=True)  # sys.stderr may be Celery's logging proxy
        # SystemExit, not an Exception: Celery logs and ignores what a signal handler raises.
        raise SystemExit(1) from None


#: Celery's loggers of a task's "received" and "succeeded" lines (``celery.worker.strategy``,
#: ``celery.app.trace``: each record carries the task's ``name``, and ``return_value``, in
#: ``data``) and of "Discarding revoked task" (``celery.worker.request``: the task's name is
#: the first argument), which a housekeeping task past its ``expires`` gets (queued by beat
#: while no worker ran).
TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace", "celery.worker.request")
#: A housekeeping run's result when it found nothing to do (a count of 0, or nothing).
NOTHING_DONE = ("0", "None")
_DISCARDED = "Discarding revoked task"


class HousekeepingLogFilter(logging.Filter):
    """Drops the INFO lines about the tasks named ``tasks`` (beat's schedule): "received" and
    "discarding" always, "succeeded" when the result is in ``NOTHING_DONE``. Every other record
    passes (warnings and errors, any other task's lines)."""

    def __init__(self, tasks: Iterable[str]) -> None:
        super().__init__()
        self.tasks = frozenset(tasks)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        if isinstance(record.msg, str) and record.msg.startswith(_DISCARDED):
            return not (isinstance(record.args, tuple) and record.args and record.args[0] in self.tasks)
        data = getattr(record, "data", None)
        if not isinstance(data, dict) or data.get("name") not in self.tasks:
            return True
        return "return_value" in data and str(data["return_value"]) not in NOTHING_DONE


@signals.worker_init.connect
def _quiet_when_idle(**kwargs: Any) -> None:
    from django.conf import settings

    quiet = HousekeepingLogFilter(entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values())
    for name in TASK_LOGGERS:
        logging.getLogger(name).addFilter(quiet)


#: What a worker that serves the sending queue and not beat's says when it starts.
NO_HOUSEKEEPING = (
    "this worker serves the %r queue and not %r, where beat's tasks go (landing events, scheduled "
    "sends, recovery, webhook dispatch): unless another worker serves %r, none of them runs and "
    "their messages pile up in Redis. Add it to --queues (%s,%s) or run the housekeeping worker "
    "(scripts/Procfile, docker-compose.yml)"
)


@signals.celeryd_after_setup.connect
def _say_when_beats_queue_is_not_served(instance: Any, **kwargs: Any) -> None:
    """A worker set up before beat's queue existed (``--queues celery``, from an older
    Procfile or unit file) starts as it did and would run none of beat's tasks: say so, at
    WARNING, when a worker's queues hold the sending queue and not beat's (settings
    ``HOUSEKEEPING_QUEUE``). A worker without ``--queues`` serves both
    (``CELERY_TASK_QUEUES``)."""
    from django.conf import settings

    queues = set(instance.app.amqp.queues.consume_from)
    default, housekeeping = instance.app.conf.task_default_queue, settings.HOUSEKEEPING_QUEUE
    if default in queues and housekeeping not in queues:
        logging.getLogger(__name__).warning(NO_HOUSEKEEPING, default, housekeeping, housekeeping, default, housekeeping)


@signals.worker_process_init.connect
def _children_leave_sigterm_to_the_main_process(**kwargs: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
