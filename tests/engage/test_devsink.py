"""The development SMTP sink keeps what it receives and indexes it as it does (issue 15,
Deliver 6): the sink's pages find a new message without reading its file."""

from __future__ import annotations

import smtplib

from aiosmtpd.controller import Controller

from console.sink_mailbox import Mailbox
from engage.devsink import SinkHandler
from tests.console.helpers import sink_message
from tests.transmissions.relay import free_port


def test_each_message_received_is_kept_with_its_envelope_and_indexed(tmp_path):
    handler = SinkHandler(tmp_path / "sink")
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", controller.port) as smtp:
            for i in (1, 2):
                rcpt, data = sink_message(i)
                smtp.sendmail("bounces@example.com", [rcpt, "copy@example.org"], data)
    finally:
        controller.stop()
        handler.mailbox.close()
    files = sorted((tmp_path / "sink").glob("*.eml"))
    assert len(files) == 2
    assert (
        files[1]
        .read_bytes()
        .startswith(
            b"X-Engage-Sink-Mail-From: bounces@example.com\r\n"
            b"X-Engage-Sink-Rcpt-To: user2@example.org, copy@example.org\r\nFrom: Shop <shop@example.com>\r\n"
        )
    )
    with Mailbox(tmp_path / "sink") as mailbox:  # read before any sync: the sink wrote these rows
        entries = mailbox.search()[0:10]
    assert [entry.name for entry in entries] == [files[1].name, files[0].name]
    assert entries[0].summary.subject == "Order 2 shipped"
    assert entries[0].summary.rcpt_to == "user2@example.org, copy@example.org"


def test_sigterm_ends_the_sink_with_status_0(tmp_path):
    """scripts/run's stop showed "sink.1 stopped (rc=-15)", which reads as a crash (newcomer)."""
    import signal
    import subprocess
    import sys
    import time

    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "engage.devsink", "--port", str(port), "--dir", str(tmp_path / "sink")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "development SMTP sink on" in sink.stdout.readline()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # serving
            try:
                smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
                break
            except OSError:
                time.sleep(0.1)
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(10) == 0
    finally:
        sink.kill()
