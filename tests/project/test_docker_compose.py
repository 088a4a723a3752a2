"""docker-compose.yml describes the production shape with the same setting names as the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_parses_and_has_the_production_services():
    assert set(compose()["services"]) >= {"postgres", "redis", "web", "worker", "webhooks", "beat"}


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
    for name in ("web", "worker", "webhooks", "beat"):
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


def _queues(words: list[str]) -> set[str]:
    for flag in ("--queues", "-Q"):
        if flag in words:
            return set(words[words.index(flag) + 1].split(","))
    return {"celery"}  # a worker without --queues serves the default queue only


def test_every_task_queue_has_a_worker_in_compose_and_in_scripts_run():
    """A task routed to a queue nobody serves would wait forever (webhooks have their own)."""
    from engage.celery import app

    app.loader.import_default_modules()  # the autodiscovered task modules
    routed = {app.amqp.router.route({}, name)["queue"].name for name in app.tasks if not name.startswith("celery.")}
    assert routed == {"celery", "webhooks"}
    served = set()
    for service in compose()["services"].values():
        words = _words(service.get("command") or [])
        if words[:4] == ["celery", "-A", "engage", "worker"]:
            served |= _queues(words)
    assert served == routed
    run_served = set()
    for line in (ROOT / "scripts" / "run").read_text().splitlines():
        words = shlex.split(line.split("&")[0]) if "celery -A engage worker" in line else []
        if words:
            run_served |= _queues(words)
    assert run_served == routed
