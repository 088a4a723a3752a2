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
    assert set(compose()["services"]) >= {"postgres", "redis", "web", "worker", "beat"}


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
    for name in ("web", "worker", "beat"):
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
