"""What reading a large DATA payload costs in memory (``smtp_injection.server.data_read``):
the payload and the message made from it, whatever its lines. Each run's lines are measured
as it arrives; the whole payload checked at its end had been split into a list of its lines
(a bytes object each: 4-byte lines cost some thirteen times the payload)."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from smtp_injection.server import LINE_TOO_LONG, data_read

LIMIT = 65536  # ENGAGE_SMTP_MAX_LINE_LENGTH's default, also the reader's limit (as aiosmtpd makes it)
RUN = 65536  # bytes a socket read hands the reader


class _Transport:
    """Enough of a transport for the reader's flow control: it pauses reading past twice its
    limit, as it pauses a socket's."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.reading.set()

    def pause_reading(self) -> None:
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()


async def _read_fed(line: bytes, lines: int, *, line_limit: int = LIMIT) -> tuple[bytes, str | None]:
    """``data_read`` of ``lines`` times ``line`` and the dot line, handed over RUN bytes at a
    time while the reader takes them."""
    reader = asyncio.StreamReader(limit=line_limit)
    transport = _Transport()
    reader.set_transport(transport)  # type: ignore[arg-type]
    run = line * (RUN // len(line))

    async def feed() -> None:
        for _ in range(lines * len(line) // len(run)):
            await transport.reading.wait()
            reader.feed_data(run)
            await asyncio.sleep(0)
        reader.feed_data(b".\r\nQUIT\r\n")

    feeder = asyncio.create_task(feed())
    try:
        return await data_read(reader, size_limit=0, line_limit=line_limit)
    finally:
        await feeder


def _peak(line: bytes, lines: int, **limits: int) -> tuple[int, tuple[bytes, str | None]]:
    tracemalloc.start()
    try:
        result = asyncio.run(_read_fed(line, lines, **limits))
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("line", "size"),
    [(b"ab\r\n", 8 * 1024 * 1024), pytest.param(b"a.\r\n", 1024 * 1024, marks=pytest.mark.slow)],
    ids=["in-64-KB-runs", "a-run-per-line"],
)
def test_a_payload_of_tiny_lines_peaks_at_about_twice_its_size(line, size):
    """The payload as read, then the message: never a list of its lines (at ebdf75a, 8 MiB of
    4-byte lines peaked at 102.5 MiB)."""
    peak, (content, refusal) = _peak(line, size // len(line))
    assert refusal is None and len(content) == size
    assert peak < 3 * size, f"peak {peak / 2**20:.1f} MiB for {size / 2**20:.0f} MiB of {line!r} lines"


def test_a_line_over_the_limit_keeps_nothing_more_and_is_refused_after_the_dot():
    peak, result = _peak(b"x" * 100 + b"\r\n", 80_000, line_limit=64)
    assert result == (b"", LINE_TOO_LONG)
    assert peak < 1024 * 1024  # the reader's runs, never the payload (7.8 MiB)
