"""The group's deadline against a step of this host's wall clock (NTP, a VM resumed)."""

from __future__ import annotations

import time

from tests.smtp_injection.helpers import inject, login, message


def test_a_wall_clock_stepped_back_after_connect_refuses_no_healthy_group(start_listener, smtp_key, monkeypatch):
    """The server's clock offset is measured once per store connection. It was against
    ``time.time()``, so when this host's clock stepped back by more than the store timeout
    after the connection was made, the next group's deadline was already past in the server's
    clock: a healthy message answered 451 (once per store connection). The deadline is kept
    in the monotonic clock: the message is stored and answered 250."""
    listener = start_listener(store_timeout=5.0)
    client = listener.client()
    login(client, smtp_key)
    assert inject(client, ["jo@example.com"], message())[0] == 250  # the store connection, its offset
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 60)  # the wall clock steps back a minute
    codes = [inject(client, ["jo@example.com"], message())[0] for _ in range(3)]
    assert codes == [250, 250, 250]
