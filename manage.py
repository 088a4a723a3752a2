#!/usr/bin/env python3
"""Django's command line for Engage: ``./manage.py <command>`` from the project root, or
``.venv/bin/python manage.py <command>``.

Run by a Python without Django (``./manage.py`` finds the system ``python3``), it starts
again with the project's ``.venv/bin/python`` (made by ``scripts/run`` or ``scripts/test``),
or says how to make one.
"""

import os
import sys
from pathlib import Path


def _venv_python() -> Path | None:
    """The project's virtualenv interpreter, when it exists and is not the one running."""
    venv = Path(__file__).resolve().parent / ".venv"
    python = venv / "bin" / "python"
    if not python.exists() or Path(sys.prefix).resolve() == venv.resolve():
        return None
    return python


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "engage.settings")
    try:
        from django.core.management import execute_from_command_line
    except ModuleNotFoundError:
        python = _venv_python()
        if python is None:
            sys.exit("manage.py: Django is not installed here; run scripts/run (or scripts/test) once to make .venv")
        os.execv(python, [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
