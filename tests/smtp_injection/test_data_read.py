"""The listener reads a DATA payload in runs (``smtp_injection.server.data_read``), not line by
line as aiosmtpd does: held here to aiosmtpd 1.4.6's own ``SMTP.smtp_DATA`` on the same bytes,
hostile ones included (SMTP smuggling's bare line ends, dot-stuffing, lines and messages over
the limits, the dot line at every place a reader's buffer can cut)."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from smtp_injection.server import _OWN_REPLIES, data_read

NEXT = b"NOOP\r\n"  # a pipelined command after the payload: left to the session, byte for byte


class _Writer:
    def __init__(self) -> None:
        self.sent = bytearray()

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


class _Handler:
    def __init__(self) -> None:
        self.content: bytes | None = None

    async def handle_DATA(self, server, session, envelope) -> str:
        self.content = envelope.original_content
        return "250 OK"


def _reader(stream: bytes, limit: int, cut: int | None) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=limit)
    if cut is None:
        reader.feed_data(stream)
    else:  # as the network hands it over: in two reads
        reader.feed_data(stream[:cut])
        asyncio.get_running_loop().call_later(0.001, reader.feed_data, stream[cut:])
    return reader


async def _aiosmtpd(stream: bytes, *, size_limit: int, line_limit: int, cut: int | None) -> tuple[object, bytes]:
    """What aiosmtpd 1.4.6's ``smtp_DATA`` makes of ``stream``: the content its handler got,
    or its refusal (in the listener's words); and what it left unread."""
    handler = _Handler()
    server = SMTP(handler, data_size_limit=size_limit, decode_data=False, auth_required=False)
    server.line_length_limit = line_limit
    server.session = Session(asyncio.get_running_loop())
    server.session.host_name = "client.example"
    server.envelope = Envelope()
    server.envelope.rcpt_tos.append("jo@example.com")
    server.transport = object()  # its loop runs while there is one
    server._reader = _reader(stream, line_limit, cut)
    writer = _Writer()
    server._writer = writer
    await SMTP.smtp_DATA(server, "")
    replies = bytes(writer.sent).split(b"\r\n")
    refusal = replies[1].decode()  # after the 354
    outcome = handler.content if handler.content is not None else _OWN_REPLIES.get(refusal, refusal)
    return outcome, await _rest(server._reader)


async def _engage(stream: bytes, *, size_limit: int, line_limit: int, cut: int | None) -> tuple[object, bytes]:
    reader = _reader(stream, line_limit, cut)
    content, refusal = await data_read(reader, size_limit=size_limit, line_limit=line_limit)
    return (refusal if refusal is not None else content), await _rest(reader)


async def _rest(reader: asyncio.StreamReader) -> bytes:
    return await reader.readexactly(len(NEXT))


def _over_both(stream: bytes, *, size_limit: int, line_limit: int) -> bool:
    """Whether the payload (to its first dot line) is over the size limit and has a line over
    the line limit."""
    lines, size = [], 0
    for line in stream.split(b"\r\n"):
        if line == b".":
            break
        lines.append(len(line) + 2)
        size += len(line) + 2
    return bool(size_limit) and size > size_limit and max(lines, default=0) > line_limit


PIECES = [b"a", b"Hello", b".", b"..", b"\r\n", b"\r", b"\n", b"\r\n.", b".\r\n", b"\n.\r\n", b"\r.\r\n",
          b"\n.\n", b"\r\n..\r\n", b"x" * 17, b"y" * 40, b"\xff\x00", b" "]  # fmt: skip


def _stream(chooser: random.Random) -> bytes:
    body = b"".join(chooser.choice(PIECES) for _ in range(chooser.randint(0, 40)))
    return body + (b"\r\n.\r\n" if body else b".\r\n") + NEXT  # a dot line always comes


@pytest.mark.parametrize("seed", range(4))
def test_the_payload_read_in_runs_is_what_aiosmtpd_reads_line_by_line(seed):
    chooser = random.Random(seed)

    async def compare() -> None:
        for _ in range(600):
            stream = _stream(chooser)
            limits = {"size_limit": chooser.choice([0, 30, 60, 400]), "line_limit": chooser.choice([24, 32, 64])}
            cut = chooser.choice([None, chooser.randint(0, len(stream))])
            theirs = await _aiosmtpd(stream, cut=cut, **limits)
            ours = await _engage(stream, cut=cut, **limits)
            if isinstance(ours[0], str) and isinstance(theirs[0], str) and _over_both(stream, **limits):
                assert ours[1] == theirs[1]  # either refusal is right; aiosmtpd's is the one it met first
                continue
            assert ours == theirs, (stream, limits, cut)

    asyncio.run(compare())


@pytest.mark.parametrize(
    ("payload", "content"),
    [
        (b".\r\n", b""),
        (b"Subject: a\r\n\r\n..dotted\r\n.\r\n", b"Subject: a\r\n\r\n.dotted\r\n"),
        (b"..first\r\nsecond.\r\n.\r\n", b".first\r\nsecond.\r\n"),
        # Smuggling probes: a dot after a bare LF or CR ends nothing; the payload goes on.
        (b"one\n.\r\nMAIL FROM:<x@y.z>\r\n.\r\n", b"one\n.\r\nMAIL FROM:<x@y.z>\r\n"),
        (b"one\r.\r\nRCPT TO:<x@y.z>\r\n.\r\n", b"one\r.\r\nRCPT TO:<x@y.z>\r\n"),
        (b"one\n.\nDATA\r\n.\r\n", b"one\n.\nDATA\r\n"),
    ],
)
def test_dot_stuffing_is_undone_and_only_a_dot_line_after_crlf_ends_the_payload(payload, content):
    async def read() -> tuple[object, bytes]:
        return await _engage(payload + NEXT, size_limit=0, line_limit=1000, cut=None)

    assert asyncio.run(read()) == (content, NEXT)


def test_a_payload_over_the_limits_is_refused_after_its_dot_and_the_session_goes_on():
    async def read(payload: bytes, **limits: int) -> tuple[object, bytes]:
        return await _engage(payload + NEXT, cut=None, **limits)

    long_line = b"x" * 5000 + b"\r\n.\r\n"
    assert asyncio.run(read(long_line, size_limit=0, line_limit=1000)) == ("500 5.5.2 Line too long", NEXT)
    big = b"line\r\n" * 2000 + b".\r\n"
    assert asyncio.run(read(big, size_limit=1000, line_limit=1000)) == (
        "552 5.3.4 Message size exceeds fixed maximum message size",
        NEXT,
    )
