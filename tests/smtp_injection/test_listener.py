"""The SMTP injection listener against real clients on loopback (issue 13, Tests)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import smtplib
import socket
import subprocess
import time

import psycopg
import pytest

from api_keys.models import ApiKey
from smtp_injection.server import CLOSE_TIMEOUT, MAX_HELD_REPLIES
from tests.smtp_injection.helpers import inject, inject_raw, login, message, send_all, transmission_id
from transmissions.models import Message, Transmission


def test_ehlo_offers_the_esmtp_extensions_and_auth_only_after_starttls(smtp):
    import ssl

    client = smtp.client(tls=False)
    assert {"pipelining", "enhancedstatuscodes", "size", "8bitmime", "smtputf8", "starttls"} <= set(
        client.esmtp_features
    )
    assert "auth" not in client.esmtp_features
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo("client.example.com")
    assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
    client.quit()


def test_smtplib_starttls_auth_plain_three_rcpt_is_stored_and_relayed_without_x_msys_api(smtp, smtp_key, relay):
    client = smtp.client()
    login(client, smtp_key)
    header = {"campaign_id": "invoices", "metadata": {"customer": "42"}, "tags": ["billing"]}
    rcpts = ["jo@example.com", "al@example.com", "bo@example.com"]
    code, reply = inject(client, rcpts, message(header))
    client.quit()
    assert code == 250, reply
    tid = transmission_id(reply)
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.campaign_id == "invoices"
    assert transmission.metadata == {"customer": "42"}
    assert transmission.return_path == "bounce@sender.example.com"
    assert transmission.options["open_tracking"] is False and transmission.options["click_tracking"] is False
    messages = Message.objects.filter(transmission_id=tid)
    assert sorted(messages.values_list("email", flat=True)) == sorted(rcpts)
    assert all(row.recipient["tags"] == ["billing"] for row in messages)
    send_all(tid)
    assert sorted(received.rcpt_tos[0] for received in relay.received) == sorted(rcpts)
    for received in relay.received:
        assert b"X-MSYS-API" not in received.data and b"x-msys-api" not in received.data.lower()
        assert received.message["Subject"] == "Your invoice"
        first = received.message.get_all("Received")[0]
        assert "smtp.engage.test" in first and "billing app" in first and smtp_key not in first
        assert smtp_key.encode() not in received.data


def test_a_2_kb_x_msys_api_on_one_line_is_accepted(smtp, smtp_key):
    header = {"campaign_id": "long", "metadata": {"blob": "x" * 2000}}
    data = message(header)
    assert max(len(line) for line in data.split("\r\n")) > 2000
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], data)
    assert code == 250, reply
    assert Transmission.objects.get(pk=transmission_id(reply)).metadata == {"blob": "x" * 2000}


def test_header_tracking_options_win_over_the_listener_defaults(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(
        client, ["jo@example.com"], message({"options": {"open_tracking": True, "click_tracking": True}})
    )
    assert code == 250, reply
    options = Transmission.objects.get(pk=transmission_id(reply)).options
    assert options["open_tracking"] is True and options["click_tracking"] is True
    assert options["perform_substitutions"] is False


def test_cc_bcc_archive_fan_out_one_message_per_address_deduplicated(smtp, smtp_key, relay):
    header = {"cc": [{"email": "cc@example.com", "name": "Cee"}], "bcc": ["bcc@example.com"],
              "archive": ["jo@example.com", "arch@example.com"]}  # fmt: skip
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message(header))
    assert code == 250, reply
    tid = transmission_id(reply)
    emails = sorted(Message.objects.filter(transmission_id=tid).values_list("email", flat=True))
    assert emails == ["arch@example.com", "bcc@example.com", "cc@example.com", "jo@example.com"]
    send_all(tid)
    assert len(relay.received) == 4
    for received in relay.received:
        assert received.message["Cc"] == "Cee <cc@example.com>"


@pytest.mark.parametrize(
    ("header", "reply"),
    [
        ('{"campaign_id": ', "5.6.0 JSON parsing error in X-MSYS-API"),
        ({"metadata": []}, "5.6.0 X-MSYS-API 'metadata' must be of type 'json object'"),
        ({"campaign_id": "c" * 65}, "5.6.0 smtpapi_campaign_id context is limited to 64 bytes"),
    ],
)
def test_a_bad_x_msys_api_is_refused_with_its_sparkpost_reply(smtp, smtp_key, header, reply):
    client = smtp.client()
    login(client, smtp_key)
    code, text = inject(client, ["jo@example.com"], message(header))
    assert code == 550
    assert text.decode().startswith(reply)
    assert not Transmission.objects.exists()


def test_a_duplicate_x_msys_api_is_refused(smtp, smtp_key):
    data = message({"campaign_id": "a"}).replace("Subject:", 'X-MSYS-API: {"campaign_id": "b"}\r\nSubject:')
    client = smtp.client()
    login(client, smtp_key)
    code, _text = inject(client, ["jo@example.com"], data)
    assert code == 550
    assert not Transmission.objects.exists()


def test_a_wrong_key_is_535(smtp, smtp_key):
    client = smtp.client()
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        login(client, smtp_key + "x")
    assert caught.value.smtp_code == 535 and caught.value.smtp_error.startswith(b"5.7.8")


def test_a_key_without_the_smtp_inject_grant_is_535_and_a_warning_names_the_key_not_its_secret(smtp, make_key, caplog):
    key = make_key("transmissions/modify", label="billing app")
    client = smtp.client()
    with caplog.at_level(logging.INFO), pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        login(client, key)
    # the wire says no more than for a wrong key (SMTP-INJECTION.md: 535 5.7.8)
    assert caught.value.smtp_code == 535 and caught.value.smtp_error.startswith(b"5.7.8")
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    prefix = ApiKey.objects.get(label="billing app").prefix
    assert any("'billing app'" in line and prefix in line and "smtp/inject" in line for line in warnings), warnings
    assert not any(key in record.getMessage() for record in caplog.records)


def test_a_wrong_key_logs_no_warning_and_says_why_at_info(smtp, smtp_key, caplog):
    client = smtp.client()
    with caplog.at_level(logging.INFO), pytest.raises(smtplib.SMTPAuthenticationError):
        login(client, smtp_key + "x")
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    said = [record.getMessage() for record in caplog.records if "AUTH refused" in record.getMessage()]
    # smtplib tries PLAIN, then LOGIN: one line for each
    assert said and set(said) == {"smtp: AUTH refused: no API key matches the password (unknown or revoked)"}
    assert not any(smtp_key in record.getMessage() for record in caplog.records)


def test_another_user_name_is_logged_as_the_reason(smtp, smtp_key, caplog):
    """A newcomer's finding: the README says the log tells which 535 it was; for a wrong user
    or an unknown key it only said that AUTH failed."""
    import base64

    client = smtp.client()
    with caplog.at_level(logging.INFO):
        client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0someone\0{smtp_key}".encode()).decode())
    said = [record.getMessage() for record in caplog.records if "AUTH refused" in record.getMessage()]
    assert said == ["smtp: AUTH refused: the user is 'someone', not SMTP_Injection"]
    assert not any(smtp_key in record.getMessage() for record in caplog.records)


def test_another_user_name_or_a_subaccount_is_535(smtp, smtp_key):
    import base64

    client = smtp.client()
    code, _ = client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0someone\0{smtp_key}".encode()).decode())
    assert code == 535
    user = "SMTP_Injection:X-MSYS-SUBACCOUNT=7"
    code, _ = client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{user}\0{smtp_key}".encode()).decode())
    assert code == 535


def test_auth_login_with_sparkpost_challenges_is_235(smtp, smtp_key):
    import base64

    client = smtp.client()
    code, challenge = client.docmd("AUTH", "LOGIN")
    assert (code, base64.b64decode(challenge)) == (334, b"Username:")
    code, challenge = client.docmd(base64.b64encode(b"SMTP_Injection").decode())
    assert (code, base64.b64decode(challenge)) == (334, b"Password:")
    code, text = client.docmd(base64.b64encode(smtp_key.encode()).decode())
    assert code == 235, text


def test_repeated_auth_failures_are_421_and_close(smtp, smtp_key):
    import base64

    client = smtp.client()
    bad = "PLAIN " + base64.b64encode(b"\0SMTP_Injection\0wrong").decode()
    assert client.docmd("AUTH", bad)[0] == 535
    assert client.docmd("AUTH", bad)[0] == 535
    assert client.docmd("AUTH", bad) == (421, b"4.7.0 Too many authentication failures")


def _read_to_eof(sock) -> list[bytes]:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received.splitlines()


def test_nothing_is_answered_after_the_421_though_replies_wait_to_be_sent(smtp):
    """A session closed with a 421 while replies still wait in its buffer (a client slow to
    read) answers nothing more: a closing transport still sends what is written to it, and
    aiosmtpd goes on with the lines it had read (helper attack, session 17: 31,188 replies
    after the 421, a message stored without its 250, 20 AUTHs tried past the limit of 3)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", smtp.port))
        sock.settimeout(10)

        async def close_with_replies_waiting() -> int:
            (session,) = smtp.listener.sessions
            transport = session._stream_transport()
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            session._writer.write(b"250-waiting\r\n" * 2000)  # 26 KB: under the high-water mark
            waiting = transport.get_write_buffer_size()
            await session.close_with("421 4.3.2 Service shutting down")
            await session.push("250 2.0.0 OK")
            await session.push("252 2.1.5 Cannot VRFY user")
            return waiting

        time.sleep(0.2)
        waiting = asyncio.run_coroutine_threadsafe(close_with_replies_waiting(), smtp.loop).result(10)
        replies = _read_to_eof(sock)
    assert waiting > 0
    assert replies[-1] == b"421 4.3.2 Service shutting down", replies[-3:]


def test_a_message_read_while_the_421_goes_is_not_stored(smtp, smtp_key):
    """An attacker's finding at shutdown: the session was marked closed only once its 421 was
    written, and meanwhile its handler went on with the pipelined message it had read: the
    message was stored and delivered, its client had the 421 (and retried it: twice
    delivered), or a 354 after the 421. From the moment the 421 is decided, nothing more
    is stored or answered."""
    client = smtp.client()
    login(client, smtp_key)
    before = Transmission.objects.count()
    started = asyncio.Event()

    async def close_slowly() -> None:
        (session,) = smtp.listener.sessions
        push = session.push

        async def slow_push(reply):
            if str(reply).startswith("421"):
                started.set()
                await asyncio.sleep(0.5)  # a client slow to read: the handler runs meanwhile
            await push(reply)

        session.push = slow_push
        await session.close_with("421 4.3.2 Service shutting down")

    closing = asyncio.run_coroutine_threadsafe(close_slowly(), smtp.loop)
    asyncio.run_coroutine_threadsafe(started.wait(), smtp.loop).result(10)
    client.send(
        b"MAIL FROM:<a@sender.example.com>\r\nRCPT TO:<jo@example.com>\r\nDATA\r\n" + message().encode() + b".\r\n"
    )
    closing.result(10)
    replies = []
    while True:
        try:
            replies.append(client.getreply())
        except smtplib.SMTPServerDisconnected:
            break
    assert [code for code, _text in replies if code != -1] == [421], replies
    time.sleep(0.5)
    assert Transmission.objects.count() == before


def test_a_tls_connection_lost_while_its_421_goes_does_not_break_the_shutdown(smtp):
    """asyncio's TLS transport, closed twice, forgets its protocol and raises on any question
    about its buffer; a session whose client left while its 421 was being sent is closed
    quietly (CI, session 17: the listener's shutdown raised AttributeError)."""
    client = smtp.client()  # STARTTLS: the transport is asyncio's TLS one

    async def lose_the_connection_during_the_421() -> None:
        (session,) = smtp.listener.sessions
        transport = session._stream_transport()

        async def push(_reply: str) -> None:
            transport.close()  # as a lost connection does, while the reply is on its way

        session.push = push
        await session.close_with("421 4.3.2 Service shutting down")

    asyncio.run_coroutine_threadsafe(lose_the_connection_during_the_421(), smtp.loop).result(10)
    client.close()


def test_sessions_pipelining_megabytes_do_not_stall_the_others(smtp):
    """A session yields to the others every YIELD_EVERY replies: ten clients each sending
    NOOPs without reading (their buffers full of commands) leave an honest session's NOOP
    answered promptly (helper attack, session 17: 10 such clients, 1.4-1.9 s; 40, 7-13 s)."""
    import threading

    stop = threading.Event()

    def flood() -> None:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", smtp.port))
            sock.settimeout(0.2)
            while not stop.is_set():
                try:
                    sock.send(b"NOOP\r\n" * 16384)
                except TimeoutError:
                    pass

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(10)]
    for flooder in flooders:
        flooder.start()
    try:
        time.sleep(1)
        client = smtp.client(tls=False)
        slowest = 0.0
        for _ in range(20):
            started = time.perf_counter()
            assert client.noop()[0] == 250
            slowest = max(slowest, time.perf_counter() - started)
        client.quit()
    finally:
        stop.set()
        for flooder in flooders:
            flooder.join(5)
    assert slowest < 1.0


def test_mail_before_auth_is_530(smtp):
    client = smtp.client()
    assert client.mail("a@sender.example.com") == (530, b"5.7.0 Authentication required")


def test_auth_before_starttls_is_refused(smtp, smtp_key):
    import base64

    client = smtp.client(tls=False)
    code, text = client.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0SMTP_Injection\0{smtp_key}".encode()).decode())
    assert (code, text) == (530, b"5.7.0 Must issue a STARTTLS command first")


def test_credentials_sent_after_a_refused_auth_are_not_logged(smtp, smtp_key, caplog):
    """An attacker's finding: AUTH LOGIN's base64 user and password sent in one write after a
    refusal (here: AUTH when already authenticated) were logged by aiosmtpd as unrecognised
    commands, upper-cased, and the hex key decoded back from them."""
    import base64

    client = smtp.client()
    login(client, smtp_key)
    user, password = (base64.b64encode(value.encode()).decode() for value in ("SMTP_Injection", smtp_key))
    with caplog.at_level(logging.INFO):
        client.send(f"AUTH LOGIN\r\n{user}\r\n{password}\r\nXYZZY\r\n".encode())
        replies = [client.getreply() for _ in range(4)]
        client.quit()
    assert replies[0][0] == 503 and all(code == 500 for code, _text in replies[1:]), replies
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "unrecognised: XYZZY" in logged  # a command word is still shown
    assert password.upper() not in logged and user.upper() not in logged and "it may be a credential" in logged


def test_a_second_starttls_is_503_and_the_key_is_counted_once(smtp, smtp_key):
    """An attacker's finding: STARTTLS inside TLS started a second handshake, and the AUTH
    after it counted the key again while the connection's end released one count: 25 such
    sessions left the key refused with 421. RFC 3207 §4: STARTTLS once."""
    for _ in range(3):
        client = smtp.client()
        login(client, smtp_key)
        assert client.docmd("STARTTLS") == (503, b"5.5.1 TLS already active")
        code, reply = inject(client, ["jo@example.com"], message().encode())
        assert code == 250, reply
        client.quit()
    deadline = time.monotonic() + 10
    while smtp.listener.per_key and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not smtp.listener.per_key, smtp.listener.per_key


def test_a_size_over_the_limit_is_552(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    code, text = client.mail("a@sender.example.com", [f"SIZE={2 * 1024 * 1024}"])
    assert (code, text) == (552, b"5.3.4 Message size exceeds fixed maximum message size")


def test_oversize_data_is_552_and_nothing_is_stored(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    data = message() + ("x" * 998 + "\r\n") * 1100
    code, text = inject(client, ["jo@example.com"], data)
    assert (code, text) == (552, b"5.3.4 Message size exceeds fixed maximum message size")
    assert not Transmission.objects.exists()


def test_the_1001st_rcpt_is_452(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    assert client.mail("a@sender.example.com")[0] == 250
    for index in range(1000):
        assert client.rcpt(f"r{index}@example.com")[0] == 250
    assert client.rcpt("r1000@example.com") == (452, b"4.5.3 Too many recipients")


@pytest.mark.parametrize("probe", [b"\n.\r\n", b"\r.\r\n", b"\n.\n"])
def test_smuggling_probes_never_make_two_messages(smtp, smtp_key, probe):
    client = smtp.client()
    login(client, smtp_key)
    assert client.mail("a@sender.example.com")[0] == 250
    assert client.rcpt("jo@example.com")[0] == 250
    assert client.docmd("DATA")[0] == 354
    smuggled = (
        b"From: a@sender.example.com\r\nSubject: one\r\n\r\nfirst" + probe
        + b"MAIL FROM:<evil@sender.example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
        + b"From: evil@sender.example.com\r\nSubject: two\r\n\r\nsecond\r\n.\r\n"
    )  # fmt: skip
    client.send(smuggled)
    code, _text = client.getreply()
    assert code == 250
    assert Transmission.objects.count() == 1
    assert list(Message.objects.values_list("email", flat=True)) == ["jo@example.com"]


def _replies_in_one_read(client) -> list[bytes]:
    """The reply lines one read of the TLS socket gives (one TLS record at most)."""
    time.sleep(0.3)  # every reply the listener writes has arrived
    return client.sock.recv(65536).splitlines()


def test_a_pipelined_group_is_answered_in_one_write(smtp, smtp_key):
    """RFC 2920 §3.2: the dot, MAIL, RCPT and DATA of a pipelining client are answered as a
    unit (one TLS record), not a record and a packet each."""
    client = smtp.client()
    login(client, smtp_key)
    client.send(b"MAIL FROM:<a@sender.example.com>\r\nRCPT TO:<jo@example.com>\r\nDATA\r\n")
    assert [line[:3] for line in _replies_in_one_read(client)] == [b"250", b"250", b"354"]
    body = message().encode() + b".\r\n"
    client.send(body + b"MAIL FROM:<a@sender.example.com>\r\nRCPT TO:<al@example.com>\r\nDATA\r\n")
    replies = _replies_in_one_read(client)
    assert [line[:3] for line in replies] == [b"250", b"250", b"250", b"354"], replies
    assert replies[0].startswith(b"250 2.0.0 OK ")
    client.send(body)
    assert _replies_in_one_read(client)[0].startswith(b"250 2.0.0 OK ")
    assert sorted(Message.objects.values_list("email", flat=True)) == ["al@example.com", "jo@example.com"]


def test_a_held_250_goes_out_before_the_reply_that_closes_the_session(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    client.send(b"MAIL FROM:<a@sender.example.com>\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    time.sleep(0.3)
    received = b""
    while chunk := client.sock.recv(65536):
        received += chunk
    assert [line[:3] for line in received.splitlines()] == [b"250", b"250", b"250", b"221"], received


def _unsent_while_flooded(smtp, command: bytes, seconds: float = 4.0) -> int:
    """Send ``command`` repeated for ``seconds`` from a client that never reads its replies;
    the most bytes the listener then had waiting to go out to it (its transport's buffer and
    the replies it held), read from the listener's own loop."""

    async def unsent() -> int:
        return max(
            (session._stream_transport().get_write_buffer_size() + len(session._held)
             for session in smtp.listener.sessions
             if session._stream_transport() is not None and not session._stream_transport().is_closing()),
            default=0,
        )  # fmt: skip

    most = 0
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", smtp.port))
        sock.settimeout(0.2)
        chunk, until = command * 8192, time.monotonic() + seconds
        while time.monotonic() < until:
            try:
                sock.send(chunk)
            except TimeoutError:
                pass
            most = max(most, asyncio.run_coroutine_threadsafe(unsent(), smtp.loop).result(10))
    return most


def test_a_client_that_never_reads_is_held_back_by_tcp_not_buffered_for(smtp):
    """Its 250s are not held without bound (push): once the connection's buffer is past its
    high-water mark the session waits, stops reading, and the client's sends block (helper
    attack, session 17: 15 MB of EHLO had grown the listener by 257 MB)."""
    bound = 64 * 1024 + MAX_HELD_REPLIES + 4096  # asyncio's high-water mark, what is held, one reply
    assert _unsent_while_flooded(smtp, b"EHLO x\r\n") <= bound
    assert _unsent_while_flooded(smtp, b"NOOP\r\n") <= bound


def test_a_stopping_listener_waits_on_no_client_that_does_not_read(smtp):
    """Its 421 gets CLOSE_TIMEOUT seconds, then the connection is dropped (helper attack,
    session 17: the listener was still running 40 s after SIGTERM, until the client left)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", smtp.port))
        sock.settimeout(0.2)
        until = time.monotonic() + 2
        while time.monotonic() < until:  # the listener's buffer to this client fills
            try:
                sock.send(b"EHLO x\r\n" * 8192)
            except TimeoutError:
                pass
        started = time.monotonic()
        smtp.shutdown()
        assert time.monotonic() - started < CLOSE_TIMEOUT + 3


def test_a_database_failure_is_451_never_250(smtp, smtp_key, monkeypatch):
    async def broken(**_kwargs):
        raise psycopg.OperationalError("connection to server was lost")

    monkeypatch.setattr("smtp_injection.services.transmissions_insert_group_async", broken)
    client = smtp.client()
    login(client, smtp_key)
    code, text = inject(client, ["jo@example.com"], message())
    assert (code, text) == (451, b"4.3.0 Temporary failure, please retry")


def test_connections_over_the_cap_are_421(start_listener):
    listener = start_listener(max_connections=2)
    first, second = listener.client(tls=False), listener.client(tls=False)
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        listener.client(tls=False)
    assert caught.value.smtp_code == 421
    first.quit()
    second.quit()


def test_connections_from_one_address_over_its_cap_are_421_before_any_auth(start_listener):
    import time

    listener = start_listener(max_connections=50, max_connections_per_ip=2)
    first, second = listener.client(tls=False), listener.client(tls=False)  # idle, never authenticated
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        listener.client(tls=False)
    assert caught.value.smtp_code == 421 and b"from your address" in caught.value.smtp_error
    first.quit()
    deadline = time.monotonic() + 10
    while listener.listener.per_ip["127.0.0.1"] > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    third = listener.client(tls=False)  # the closed one's place is free again
    second.quit()
    third.quit()


def test_shutdown_lets_data_in_flight_finish(start_listener, smtp_key, monkeypatch):
    import threading

    import transmissions.services

    original = transmissions.services.transmissions_insert_group_async
    entered = threading.Event()

    async def slow(**kwargs):
        entered.set()
        await asyncio.sleep(1)
        return await original(**kwargs)

    monkeypatch.setattr("smtp_injection.services.transmissions_insert_group_async", slow)
    listener = start_listener()
    idle = listener.client()
    client = listener.client()
    login(client, smtp_key)
    results = []
    sender = threading.Thread(target=lambda: results.append(inject(client, ["jo@example.com"], message())))
    sender.start()
    assert entered.wait(10)
    listener.shutdown()
    sender.join(10)
    assert results and results[0][0] == 250
    assert Transmission.objects.count() == 1
    try:
        code = idle.noop()[0]  # the 421 4.3.2 the idle session was sent at shutdown
    except smtplib.SMTPServerDisconnected:
        code = 421
    assert code == 421


def test_a_lost_enqueue_still_answers_250_and_the_scheduler_finds_it(smtp, smtp_key, monkeypatch):
    from datetime import timedelta

    from celery import current_app
    from django.utils import timezone

    from transmissions.services import transmissions_due

    def redis_down(*_args, **_kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(current_app, "send_task", redis_down)
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], message())
    assert code == 250, reply
    assert transmission_id(reply) in transmissions_due(now=timezone.now() + timedelta(seconds=61))


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed (apt-get install swaks)")
def test_swaks_auth_login_pipelined_is_stored_with_its_header(smtp, smtp_key, relay):
    header = '{"campaign_id": "swaks", "tags": ["cli"], "options": {"click_tracking": true}}'
    command = [
        "swaks", "--server", f"127.0.0.1:{smtp.port}", "-tls", "--auth", "LOGIN",
        "--auth-user", "SMTP_Injection", "--auth-password", smtp_key, "--pipeline",
        "--from", "app@sender.example.com", "--to", "jo@example.com", "--header", f"X-MSYS-API: {header}",
        "--header", "Content-Type: text/html", "--body", '<a href="https://example.com/start">start</a>',
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "<~  334 VXNlcm5hbWU6" in result.stdout  # "Username:", SparkPost's challenge, over TLS (<~)
    final = [line for line in result.stdout.splitlines() if line.startswith("<~  250 2.0.0 OK ")]
    assert len(final) == 1, result.stdout
    tid = int(final[0].rsplit(" ", 1)[1])
    transmission = Transmission.objects.get(pk=tid)
    assert transmission.campaign_id == "swaks" and transmission.options["click_tracking"] is True
    send_all(tid)
    (received,) = relay.received
    assert b"x-msys-api" not in received.data.lower()
    assert "https://example.com/start" not in received.data.decode()  # the link is tracked


def test_a_fold_inside_a_header_value_is_accepted_as_one_space(smtp, smtp_key):
    data = message().replace("Subject:", 'X-MSYS-API: {"campaign_id": "my_awes\r\n   ome_campaign"}\r\nSubject:')
    client = smtp.client()
    login(client, smtp_key)
    code, reply = inject(client, ["jo@example.com"], data)
    assert code == 250, reply
    assert Transmission.objects.get(pk=transmission_id(reply)).campaign_id == "my_awes ome_campaign"


@pytest.mark.parametrize(
    "hidden",
    [b'X-MSYS-API: {"metadata":{"internal_user_id":"42"}}', b"Bcc: x@y"],
)
@pytest.mark.parametrize("bare", [b"\r", b"\n"])
def test_a_bare_cr_or_lf_in_the_header_is_554_and_nothing_is_stored(smtp, smtp_key, hidden, bare):
    data = (
        b"From: a@example.com\r\nTo: ada@example.com\r\nSubject: crmsys\r\nX-Other: 1"
        + bare + hidden + b"\r\n\r\nbody"
    )  # fmt: skip
    client = smtp.client()
    login(client, smtp_key)
    code, text = inject_raw(client, ["ada@example.com"], data)
    assert (code, text) == (554, b"5.6.0 the header block has a bare CR or LF; end every header line with CRLF")
    assert not Transmission.objects.exists()


def test_a_bare_cr_in_the_body_is_accepted(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    code, text = inject_raw(client, ["jo@example.com"], message().encode() + b"line\rline")
    assert code == 250, text


@pytest.mark.parametrize("where", ["Subject: Your invoice\x00", "<p>Hello\x00</p>"])
def test_a_nul_byte_is_554_not_451_and_nothing_is_stored(smtp, smtp_key, where):
    data = message().replace(where.replace("\x00", ""), where)
    client = smtp.client()
    login(client, smtp_key)
    code, text = inject(client, ["jo@example.com"], data)
    assert (code, text) == (554, b"5.6.0 the message contains a NUL byte")
    assert not Transmission.objects.exists()


@pytest.mark.parametrize(("extra", "code"), [(0, 250), (-1, 250), (1, 552)])
def test_a_message_within_the_advertised_size_is_accepted(start_listener, smtp_key, settings, extra, code):
    size = 64 * 1024
    settings.ENGAGE_MAX_CONTENT_BYTES = size  # the REST content limit does not apply to SMTP
    smtp = start_listener(max_message_size=size)
    head = message().encode()
    line = b"x" * 98 + b"\r\n"  # CRLF is 2 bytes here, 4 once JSON-escaped
    body = line * ((size - len(head) - 200) // len(line))
    data = head + body + b"y" * (size - len(head) - len(body) - 2 + extra) + b"\r\n"
    assert len(data) == size + extra
    client = smtp.client()
    assert f"size {size}" in client.ehlo()[1].decode().lower()
    login(client, smtp_key)
    reply = inject(client, ["jo@example.com"], data)
    assert reply[0] == code, reply
    assert Transmission.objects.exists() is (code == 250)


@pytest.mark.parametrize("change", ["revoke", "drop the grant"])
def test_a_key_revoked_mid_session_is_530_at_the_next_mail_and_must_auth_again(start_listener, make_key, change):
    from api_keys.services import api_key_revoke

    raw = make_key("smtp/inject", label="revoked")
    other = make_key("smtp/inject", label="other")
    smtp = start_listener(key_check_seconds=0)
    client = smtp.client()
    login(client, raw)
    assert inject(client, ["jo@example.com"], message())[0] == 250
    key = ApiKey.objects.get(label="revoked")
    if change == "revoke":
        api_key_revoke(key=key)
    else:
        ApiKey.objects.filter(pk=key.pk).update(grants=["transmissions/modify"])
    code, text = client.mail("bounce@sender.example.com")
    assert (code, text) == (530, b"5.7.0 Authentication required: the key is revoked or lacks smtp/inject")
    assert client.rcpt("jo@example.com")[0] == 530
    assert Transmission.objects.count() == 1
    login(client, other)
    assert inject(client, ["jo@example.com"], message())[0] == 250


def test_vrfy_has_an_enhanced_status_code(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    assert client.verify("jo@example.com") == (
        252,
        b"2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
    )


def test_auth_and_a_message_log_no_deprecation_warning(smtp, smtp_key, caplog):
    client = smtp.client()
    login(client, smtp_key)
    assert inject(client, ["jo@example.com"], message())[0] == 250
    client.quit()
    assert not [record for record in caplog.records if "deprecated" in record.getMessage()]


@pytest.mark.parametrize("address", ["a\x00b@sender.example.com", "a\x01b@sender.example.com"])
def test_a_control_character_in_mail_from_is_553(smtp, smtp_key, address):
    client = smtp.client()
    login(client, smtp_key)
    assert client.docmd("MAIL", f"FROM:<{address}>") == (553, b"5.1.7 Bad sender address syntax")


@pytest.mark.parametrize("address", ["not-an-address", "jo@", "jo@localhost", "jo@sender..example.com"])
def test_a_mail_from_that_is_no_address_is_553_at_mail_from_before_data(smtp, smtp_key, address):
    client = smtp.client()
    login(client, smtp_key)
    assert client.docmd("MAIL", f"FROM:<{address}>")[0] == 553  # aiosmtpd's 5.1.3 for "jo@", Engage's 5.1.7
    assert client.docmd("RCPT", "TO:<jo@example.com>")[0] == 503  # no transaction was started
    assert Transmission.objects.count() == 0


def test_a_header_block_over_the_line_cap_is_554_at_once_and_nothing_is_stored(smtp, smtp_key):
    import time

    from smtp_injection.message import MAX_HEAD_LINES

    client = smtp.client()
    login(client, smtp_key)
    fields = "".join(f"X-F{n}: v\r\n" for n in range(MAX_HEAD_LINES + 1))
    started = time.monotonic()
    code, reply = inject(client, ["jo@example.com"], fields + message())
    assert code == 554 and b"header block is over" in reply, reply
    assert time.monotonic() - started < 10  # hang guard: refused before any field is parsed
    assert Transmission.objects.count() == 0


def test_help_has_an_enhanced_status_code(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    code, text = client.docmd("HELP")
    assert code == 250 and text.startswith(b"2.0.0 Supported commands: ")


def test_a_key_label_with_parentheses_stays_readable_in_the_received_comment():
    # Found by a newcomer: "(Engage; key demo ?created by scripts/run?)" reached recipients.
    from smtp_injection.services import _comment_text

    assert _comment_text("demo (created by scripts/run)") == r"demo \(created by scripts/run\)"
    assert _comment_text("a\\b") == r"a\\b"
    assert _comment_text("é\r\nBcc: x") == "???Bcc: x"
    assert len(_comment_text("(" * 100)) == 128  # cut before quoting: 64 characters, each quoted


def test_a_header_field_nothing_reads_is_accepted_and_logged_once_per_key(smtp, smtp_key, caplog):
    """A misspelt field (``campaign`` for ``campaign_id``) gets its 250 as at SparkPost, but
    the log says which field was ignored, once per key and fields, not per message."""
    client = smtp.client()
    login(client, smtp_key)
    header = '{"campaign": "typo", "tags": ["t"]}'
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            code, _reply = inject(client, ["jo@example.com"], message(header))
            assert code == 250
    warnings = [record.getMessage() for record in caplog.records if "ignored" in record.getMessage()]
    assert len(warnings) == 1 and "'campaign'" in warnings[0] and "billing app" in warnings[0], warnings
    assert set(Transmission.objects.values_list("campaign_id", flat=True)) == {""}


def test_the_everyday_path_is_read_as_aiosmtpd_reads_it():
    """``InjectionSMTP._getaddr`` reads ``<local@domain>`` with one regular expression and
    hands every other path to aiosmtpd: the address and the rest of the argument are
    aiosmtpd's (a seeded fuzz of paths and parameters, and the edge cases), except for a path
    aiosmtpd's parser raises on and one with an encoded word (refused: the test below)."""
    import random

    from aiosmtpd.smtp import SMTP

    from smtp_injection.server import _SIMPLE_PATH, InjectionSMTP

    library = SMTP(object())
    ours = InjectionSMTP.__new__(InjectionSMTP)
    ours.local_part_limit = 0
    cases = [
        "<a@b.c>", "<a@b.c> SIZE=100", "<a@b.c>  SIZE=100", "<a@b.c> SIZE=1 BODY=8BITMIME", "<a@b.c>\tX",
        "<a@b.c>x", "<a@b.c> ", "<a..b@c.d>", "<.a@b.c>", "<a@-b.c>", "<a@b.c.>", "<>", " <a@b.c>",
        "<a@[1.2.3.4]>", '<"a b"@c.d>', "<a(c)@b.c>", "<a@b.c> (c) SIZE=1", "<jö@b.c>", "a@b.c", "<a@b.c",
    ]  # fmt: skip
    pieces = ["<", ">", "a", ".", "@", " ", "\t", "SIZE=1", "(c)", '"', "-", "[1.2.3.4]", "é", "+", "=", "\\", "'", "~"]
    generator = random.Random(13)
    for _ in range(20_000):
        local = "".join(generator.choice(pieces[2:]) for _ in range(generator.randint(1, 3)))
        domain = "".join(generator.choice("ab.-9") for _ in range(generator.randint(1, 5)))
        rest = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 3)))
        cases.append(f"<{local}@{domain}>{rest}")
    fast = [case for case in cases if _SIMPLE_PATH.match(case)]
    assert len(fast) > 300  # the fast path is taken (and, below, agrees)
    for case in cases:
        try:
            expected = library._getaddr(case)
        except IndexError:  # aiosmtpd's parser on e.g. <++"@a>"@: a syntax error here
            expected = (None, None)
        assert ours._getaddr(case) == expected, case
    ours.local_part_limit = library.local_part_limit = 3
    assert ours._getaddr("<abcd@b.c>") == library._getaddr("<abcd@b.c>") == (None, None)
    assert ours._getaddr("<abc@b.c> SIZE=1") == library._getaddr("<abc@b.c> SIZE=1") == ("abc@b.c", "SIZE=1")


def test_a_path_aiosmtpds_parser_raises_on_is_a_syntax_error_not_a_451(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    code, _text = client.docmd('MAIL FROM:<++"@a>"@')
    assert 500 <= code < 600
    assert client.mail("app@example.com")[0] == 250
    code, _text = client.docmd('RCPT TO:<(c)"@b>"@')
    assert 500 <= code < 600
    assert client.rcpt("jo@example.com")[0] == 250


def test_a_path_with_an_encoded_word_is_refused_not_decoded(smtp, smtp_key):
    """aiosmtpd's parser decodes an RFC 2047 encoded word at the start of a local part
    (``<=?utf-8?b?YWRtaW4=?=@example.com>`` is ``admin@example.com`` to it, ``=0D=0A`` a CR LF,
    ``=C3=A9`` a UTF-8 address without SMTPUTF8). The fast path kept such a path as written
    while the same path with a trailing space or a comment went to aiosmtpd and was decoded:
    two envelope addresses for one path. An encoded word must not appear in an address
    (RFC 2047 §5 (3)): a path holding one's shape anywhere is a syntax error."""
    from smtp_injection.server import InjectionSMTP

    ours = InjectionSMTP.__new__(InjectionSMTP)
    ours.local_part_limit = 0
    for path in [
        "<=?utf-8?b?YWRtaW4=?=@example.com>", "<=?utf-8?b?YWRtaW4=?=@example.com>  ",
        "<(c)=?utf-8?b?YWRtaW4=?=@example.com>", "<=?utf-8?q?a=0D=0Ab?=@example.com> SIZE=1",
        '<"=?utf-8?q?x?="@example.com>', "<=?utf-8?q?a?=.b@example.com>", "=?utf-8?q?a?=@example.com",
    ]:  # fmt: skip
        assert ours._getaddr(path) == (None, None), path
    for path in ["<a.=?utf-8?q?x?=@b.c>", "<a@b.c> (=?utf-8?q?x?=) SIZE=1", "<@=?utf-8?q?x?=:a@b.c>"]:
        assert ours._getaddr(path) == (None, None), path
    assert ours._getaddr("<=?x?=@b.c>") == ("=?x?=@b.c", "")  # not an encoded word's shape: as aiosmtpd reads it
    assert ours._getaddr("<a=?b@c.d> SIZE=1") == ("a=?b@c.d", "SIZE=1")

    client = smtp.client()
    login(client, smtp_key)
    for path in ["<=?utf-8?b?YWRtaW4=?=@example.com>", "<=?utf-8?b?YWRtaW4=?=@example.com>  "]:
        code, _text = client.docmd(f"MAIL FROM:{path}")
        assert 500 <= code < 600, (path, code)
    assert client.mail("app@example.com")[0] == 250
    for path in ["<=?utf-8?b?am8=?=@example.com>", "<=?utf-8?b?am8=?=@example.com> "]:
        code, _text = client.docmd(f"RCPT TO:{path}")
        assert 500 <= code < 600, (path, code)
    assert client.rcpt("jo@example.com")[0] == 250


def test_a_long_hostile_path_is_refused_at_once_whatever_its_shape():
    """A long path never holds the loop: a lazy ``.*?`` in the first encoded-word check took
    2.3 s on a 56 KB path of ``=?a?b?x``, and aiosmtpd's own parser 3.3 s on 200 KB of
    ``a.`` (both quadratic), every session waiting meanwhile. An argument over
    ``MAX_PATH_ARGUMENT`` characters is a syntax error at once (a path is at most 256 octets,
    RFC 5321 §4.5.3.1.3), and the checks below that length are linear: a 200 KB path of each
    shape is answered within a second, as is one just under the cap."""
    import time

    from smtp_injection.server import MAX_PATH_ARGUMENT, InjectionSMTP

    ours = InjectionSMTP.__new__(InjectionSMTP)
    ours.local_part_limit = 0
    for size in (200_000, MAX_PATH_ARGUMENT - 20):
        for unit in ["=?a?b?x", "=?a?b?c", "=?" + "a" * 50, "a.", "a" * 63 + ".", "<", "=?"]:
            path = "<" + unit * (size // len(unit)) + "@example.com>"
            started = time.perf_counter()
            address, _rest = ours._getaddr(path)
            assert time.perf_counter() - started < 1.0, unit
            if size > MAX_PATH_ARGUMENT:
                assert address is None
    assert ours._getaddr("<jo@example.com> SIZE=1 " + "X" * 100) == ("jo@example.com", "SIZE=1 " + "X" * 100)
