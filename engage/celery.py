"""The Celery app. Tasks live in each app's ``tasks.py`` and are found by autodiscovery.

A worker (with or without ``--beat``) and a standalone beat run every system check when they
start (``engage/checks.py``) and exit with its message on an error, as ``manage.py`` and
gunicorn do: a worker must never sign links with a missing or malformed key.
"""

from __future__ import annotations

import os
import sys
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
