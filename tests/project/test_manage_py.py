"""``./manage.py`` works from the project root without activating .venv (issue 15, Deliver 7),
and ``manage.py reset_admin_password`` gives the admin account a new password, printed once."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[2]


def test_manage_py_is_executable_in_git_and_on_disk():
    mode = subprocess.run(["git", "ls-files", "-s", "manage.py"], cwd=ROOT, capture_output=True, text=True).stdout
    assert mode.startswith("100755 "), mode
    assert os.stat(ROOT / "manage.py").st_mode & stat.S_IXUSR
    assert (ROOT / "manage.py").read_text().startswith("#!/usr/bin/env python3\n")


def test_dot_slash_manage_py_runs_with_a_python_that_has_no_django():
    """A shell whose PATH has no .venv: /usr/bin/env finds a python3 without Django, and
    manage.py starts again with .venv/bin/python."""
    bare = subprocess.run(["/usr/bin/env", "python3", "-c", "import django"], env={"PATH": "/usr/bin:/bin"},
                          capture_output=True)  # fmt: skip
    if bare.returncode == 0:
        pytest.skip("the system python3 has Django: nothing to re-run")
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    done = subprocess.run(["./manage.py", "generate_tracking_key"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"\S{32,}\n", done.stdout), done.stdout


def test_reset_admin_password_prints_a_new_password_once_and_it_signs_in(db, client):
    admin = get_user_model().objects.create_superuser("admin", "admin@localhost", "old-password-for-tests")
    out, err = StringIO(), StringIO()
    call_command("reset_admin_password", stdout=out, stderr=err)
    password = re.fullmatch(
        r"engage: admin account: user 'admin', new password '(\S+)' \(shown once\)\n", out.getvalue()
    )[1]
    assert len(password) >= 16 and err.getvalue() == ""
    admin.refresh_from_db()
    assert admin.check_password(password) and not admin.check_password("old-password-for-tests")
    assert client.login(username="admin", password=password)
    again = StringIO()
    call_command("reset_admin_password", stdout=again)
    assert password not in again.getvalue()


def test_reset_admin_password_names_the_account_and_refuses_an_unknown_one(db):
    get_user_model().objects.create_user("ops", password="x-for-tests")  # not staff
    out, err = StringIO(), StringIO()
    call_command("reset_admin_password", "--username", "ops", stdout=out, stderr=err)
    assert "user 'ops'" in out.getvalue() and "cannot sign in to the console" in err.getvalue()
    with pytest.raises(CommandError, match="no account named 'nobody'"):
        call_command("reset_admin_password", "--username", "nobody")
