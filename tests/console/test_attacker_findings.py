"""The bugs an attacker's review of the console found (session 12), as regression tests: each
failed before its fix and names the behaviour expected. They are kept fast and bounded (the
memory one runs in a child process, so a regression cannot take the machine down)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from analytics.metrics import MAX_SERIES_BUCKETS
from templates_app.services import template_create

CONTENT = {"from": {"email": "shop@example.com", "name": "Shop"}, "subject": "Hi {{name}}",
           "html": "<p>Hello {{name}}</p>", "text": "Hello {{name}}"}  # fmt: skip
FIELDS = {"name": "T", "from_email": "shop@example.com", "subject": "Hi {{name}}", "html": "<p>{{name}}</p>"}
DEEP_JSON = "[" * 100_000


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True, is_superuser=True))
    return client


# --- /report/: a date that is no date is a 500 (with ENGAGE_DEBUG, scripts/run, the debug page) ---
@pytest.mark.parametrize("to", ["2024-02-30", "9999-12-31"])
def test_the_report_refuses_an_impossible_to_date_with_400_not_500(staff, to):
    """``analytics/report.py`` computes ``date.fromisoformat(end_day) + 1 day`` before its
    try: ValueError (Feb 30) / OverflowError (9999-12-31) escape as a 500."""
    response = staff.get("/report/", {"from": "2024-02-01", "to": to})
    assert response.status_code == 400


def test_the_report_caps_its_chart_like_the_api_caps_a_time_series(staff):
    """The report asks for a daily series over any window (no ``time_series=True``, so no
    ``MAX_SERIES_BUCKETS``): ``/report/?from=0001-01-03&to=9999-12-28`` took 82 s of CPU and
    answered 86 MB (3.65 million buckets). 1900..2025 (45,000 days) shows the missing cap
    without the wait."""
    response = staff.get("/report/", {"from": "1900-01-01", "to": "2025-01-01"})
    assert response.status_code == 400 or len(response.context["chart"]["x"]) <= MAX_SERIES_BUCKETS


# --- the test send, the editor's live preview and the preview page: sample data -> 500 ------
@pytest.mark.django_db
@pytest.mark.parametrize("data", ['{"name": "x\\u0000y"}', '{"name": NaN}', DEEP_JSON])
def test_a_test_send_with_bad_sample_data_is_a_message_not_a_500(admin_client, data):
    """NUL (jsonb refuses \\u0000: DataError), NaN (invalid JSON for PostgreSQL: DataError) and
    deep nesting (json.loads: RecursionError) all escape ``template_test_send`` as a 500; the
    editor's ``sample_data`` refuses NUL, the test send does not."""
    template_create(template_id="t", name="T", content=CONTENT, options={})
    response = admin_client.post("/templates/t/test-send/", {"address": "a@example.com", "substitution_data": data})
    assert response.status_code == 302


@pytest.mark.django_db
def test_the_editor_render_with_deeply_nested_sample_data_answers_its_error(admin_client):
    """``sample_data`` catches ValueError; json.loads raises RecursionError: 500."""
    response = admin_client.post(
        "/admin/templates_app/template/editor-render/", {**FIELDS, "substitution_data": DEEP_JSON}
    )
    assert response.status_code == 200 and response.json()["errors"]


@pytest.mark.django_db
@pytest.mark.parametrize("data", [DEEP_JSON, '{"name": "\\ud800"}'])
def test_the_preview_page_with_hostile_sample_data_answers_its_error(admin_client, data):
    """``preview_view``: RecursionError is not caught (500), and a lone surrogate renders into
    the page, whose UTF-8 encoding then fails (UnicodeEncodeError, 500)."""
    template_create(template_id="t", name="T", content=CONTENT, options={})
    response = admin_client.post(
        "/admin/templates_app/template/t/preview/", {"version": "draft", "substitution_data": data}
    )
    assert response.status_code in (200, 400)


# POST /api/v1/link-check was quadratic in the links: tests/core/test_link_check.py keeps its growth linear.


# --- the sink's message page: memory quadratic in a header's encoded words -----------------
_READ = textwrap.dedent("""
    import pathlib, resource, sys, tempfile
    sys.path.insert(0, sys.argv[1])
    from console.sink_mailbox import message_read
    path = pathlib.Path(tempfile.mkdtemp()) / "x.eml"
    path.write_bytes(b"From: a@b\\r\\nSubject: " + b"=?utf-8?q?a?= " * 8000 + b"\\r\\n\\r\\nbody")
    # The growth, not the peak: a child's ru_maxrss keeps the size of the process it was forked
    # from (pytest's) across exec.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message_read(path)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
""")


def test_the_sink_message_page_reads_a_header_of_many_encoded_words_in_bounded_memory():
    """``message_read`` reads every header with ``policy.default``; its peak memory grows with
    the square of a header's RFC 2047 words: 1,000 words 25 MB, 4,000 130 MB, 8,000 (112 KB)
    458 MB, 16,000 1.75 GB; 150,000 chars of "e-acute" as Engage's own header writer encodes
    them (13,600 words) 1.65 GB; a 1.4 MB Subject (100,000 words) grew the test process to
    23 GB and it was OOM-killed on this review's machine. (Under an address-space rlimit the
    same read succeeds in 1 GB: the memory is garbage not yet collected, so a worker without
    such a limit, gunicorn's default, is the one that dies.) Anyone who can reach the sink (an
    API key with transmissions/modify under scripts/run, whose relay it is; SMTP injection
    passes headers on) can make the page that shows the message take the web worker down.
    Here: 8,000 words must be read growing a child process's peak RSS by under 200 MB."""
    from django.conf import settings

    done = subprocess.run([sys.executable, "-c", _READ, str(settings.BASE_DIR)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    assert int(done.stdout.split()[-1]) < 200, f"peak {done.stdout.strip()} MB"
