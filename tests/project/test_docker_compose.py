"""docker-compose.yml describes the production shape with the same setting names as the code."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_parses_and_has_the_production_services():
    assert set(compose()["services"]) >= {"postgres", "redis", "web", "track", "worker", "webhooks", "beat"}


def test_compose_settings_names_are_the_ones_settings_reads():
    settings_source = (ROOT / "engage" / "settings.py").read_text()
    env = compose()["services"]["web"]["environment"]
    for name in env:
        assert f'"{name}"' in settings_source, f"{name} is set in docker-compose.yml but not read by settings"
    example = (ROOT / ".env.example").read_text()
    for name in env:
        assert re.search(rf"^#?\s*{name}=", example, re.M), f"{name} is not documented in .env.example"


def _words(command) -> list[str]:
    if isinstance(command, list):
        if command[:2] == ["sh", "-c"]:
            return shlex.split(command[2].replace("&&", " ; "))
        return command
    return shlex.split(command)


def test_each_service_command_exists_in_the_project():
    services = compose()["services"]
    commands = set()
    for name in ("web", "track", "worker", "webhooks", "beat"):
        words = _words(services[name]["command"])
        if "manage.py" in words:
            for index, word in enumerate(words):
                if word == "manage.py":
                    commands.add(("manage", words[index + 1]))
        if "gunicorn" in words:
            target = next(w for w in words if ":" in w and not w.startswith("0.0.0.0"))
            module, _, attribute = target.partition(":")
            assert (ROOT / (module.replace(".", "/") + ".py")).exists()
            assert attribute in (ROOT / (module.replace(".", "/") + ".py")).read_text()
        if words[0] == "celery":
            assert words[1] == "-A" and (ROOT / words[2] / "celery.py").exists()
            assert words[3] in {"worker", "beat"}
    from django.core.management import get_commands

    known = get_commands()
    for _, command in commands:
        assert command in known, f"manage.py {command} does not exist"


def test_tracking_has_its_own_server_serving_the_tracking_routes_alone():
    """Clicks never wait behind API requests: compose's track service is a server of its own
    (granian, as scripts/Procfile's track line), on the port it publishes, with
    ENGAGE_SERVE=tracking; web serves everything else."""
    services = compose()["services"]
    words = _words(services["track"]["command"])
    assert words[0] == "granian" and words[-1] == "engage.wsgi:application"
    assert words[words.index("--interface") + 1] == "wsgi"
    assert services["track"]["environment"]["ENGAGE_SERVE"] == "tracking"
    port = words[words.index("--port") + 1]
    assert services["track"]["ports"] == [f"{port}:{port}"]
    assert "ENGAGE_SERVE" not in services["web"]["environment"]
    assert "ENGAGE_SERVE=tracking" not in _words(services["web"]["command"])
    assert services["track"]["environment"]["ENGAGE_TRACKING_BASE_URL"].startswith("https://track.")


def _queues(words: list[str]) -> set[str]:
    for flag in ("--queues", "-Q"):
        if flag in words:
            return set(words[words.index(flag) + 1].split(","))
    from django.conf import settings

    return {queue.name for queue in settings.CELERY_TASK_QUEUES}  # a worker without --queues


def test_every_task_queue_has_a_worker_in_compose_and_in_scripts_run():
    """A task routed to a queue nobody serves would wait forever (webhooks have their own)."""
    from engage.celery import app

    app.loader.import_default_modules()  # the autodiscovered task modules
    routed = {app.amqp.router.route({}, name)["queue"].name for name in app.tasks if not name.startswith("celery.")}
    assert routed == {"celery", "webhooks", "housekeeping"}
    assert set().union(*_compose_workers().values()) == routed
    assert set().union(*_procfile_workers().values()) == routed


def _compose_workers() -> dict[str, set[str]]:
    """compose's Celery workers: service name -> the queues it serves."""
    workers = {}
    for name, service in compose()["services"].items():
        words = _words(service.get("command") or [])
        if words[:4] == ["celery", "-A", "engage", "worker"]:
            workers[name] = _queues(words)
    return workers


def _procfile_workers() -> dict[str, set[str]]:
    """scripts/run's Celery workers (the lines of scripts/Procfile): name -> the queues it serves."""
    workers = {}
    for line in (ROOT / "scripts" / "Procfile").read_text().splitlines():
        if not line.startswith("#") and "celery -A engage worker" in line:
            name, _, command = line.partition(":")
            workers[name] = _queues(shlex.split(command))
    return workers


def _queue_sent_to(app, name: str) -> str:
    """The queue a task's message goes to when beat or ``delay()`` sends it: the registered
    task's own options (a ``queue`` set on the task wins over ``CELERY_TASK_ROUTES``), then
    the routes."""
    from unittest import mock

    task = app.tasks[name]
    with mock.patch.object(app, "send_task") as send_task, mock.patch.object(task, "typing", False):
        task.apply_async((), {})  # typing off: no arguments needed to see where it goes
    queue = send_task.call_args.kwargs.get("queue")
    return app.amqp.router.route({"queue": queue} if queue else {}, name)["queue"].name


def test_beat_tasks_have_a_queue_and_a_worker_that_no_backlog_of_sending_holds_up():
    """A tick of beat (landing events, scheduled sends, recovery) never waits behind the
    generation tasks: every task beat queues goes to the housekeeping queue, no generation
    task does, and compose and scripts/run each run a worker serving that queue alone. (In
    the sending queue a tick waited behind every task queued before it and expired after two
    intervals: a backlog longer than that stopped them all until it drained.)"""
    from django.conf import settings

    from engage.celery import app

    app.loader.import_default_modules()
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"analytics.land_events", "transmissions.start_due", "transmissions.recover_stale"} <= beat
    for name in app.tasks:
        if name.startswith("celery."):
            continue
        queue = _queue_sent_to(app, name)
        assert (queue == "housekeeping") == (name in beat), (name, queue)
    for generation in ("transmissions.generate", "transmissions.generate_group", "transmissions.send_chunk"):
        assert _queue_sent_to(app, generation) == "celery"
    assert {"housekeeping"} in _compose_workers().values()
    assert {"housekeeping"} in _procfile_workers().values()


def _web_environment(**interpolated: str) -> dict[str, str]:
    """The web service's environment as compose hands it over, ``${NAME:?...}`` replaced by
    ``interpolated[NAME]`` (left as written when not given)."""
    env = {}
    for name, value in compose()["services"]["web"]["environment"].items():
        match = re.fullmatch(r"\$\{(\w+):\?[^}]*\}", str(value))
        env[name] = interpolated.get(match[1], str(value)) if match else str(value)
    return env


def test_compose_ships_no_secret_and_requires_both_with_the_command_that_makes_them():
    env = compose()["services"]["web"]["environment"]
    for name, command in (
        ("ENGAGE_SECRET_KEY", "generate_secret_key"),
        ("ENGAGE_TRACKING_KEYS", "generate_tracking_key"),
    ):
        match = re.fullmatch(rf"\$\{{{name}:\?(.+)\}}", env[name])
        assert match, f"{name} must be a required variable (${{{name}:?message}}), not a value: {env[name]!r}"
        assert f"python manage.py {command}" in match[1]


def _check(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "DJANGO_"))}
    return subprocess.run([str(ROOT / ".venv/bin/python"), "manage.py", "check"], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.slow
def test_compose_settings_pass_the_start_up_checks_once_the_secrets_are_set():
    from engage.keys import new_secret_key, new_tracking_key

    result = _check(_web_environment(ENGAGE_SECRET_KEY=new_secret_key(), ENGAGE_TRACKING_KEYS=new_tracking_key()))
    assert result.returncode == 0, result.stderr
    # run without compose's interpolation, the placeholders are refused with the way out
    result = _check(_web_environment())
    assert result.returncode != 0
    assert re.findall(r"\((engage\.E\d+)\)", result.stderr) == ["engage.E001", "engage.E002"], result.stderr
    assert "generate_secret_key" in result.stderr and "generate_tracking_key" in result.stderr


def test_every_engage_service_shares_the_event_spool_volume():
    """Clicks spooled by track while Redis and PostgreSQL are down are replayed by any other
    container (found by a newcomer: the spool stayed inside the track container)."""
    spec = compose()
    for name in ("web", "track", "worker", "webhooks", "beat"):
        service = spec["services"][name]
        spool = service["environment"]["ENGAGE_EVENT_SPOOL_DIR"]
        assert f"spool:{spool}" in service["volumes"], name
    assert "spool" in spec["volumes"]
