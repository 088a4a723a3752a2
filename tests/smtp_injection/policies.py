"""Injection policies the tests name by dotted path (``ENGAGE_SMTP_POLICY``)."""

from __future__ import annotations

from mailcore.smtp_policy import PolicyView, SmtpSettings

NOT_CALLABLE = "a policy must be callable"


def tracking_off(view: PolicyView) -> SmtpSettings:
    return SmtpSettings(open_tracking=False)


def never_returns(view: PolicyView) -> SmtpSettings:
    """A policy stuck for good (a network call without a timeout)."""
    import threading

    threading.Event().wait()
    raise AssertionError("unreachable")


def never_returns_via_pool(view: PolicyView) -> SmtpSettings:
    """A policy stuck on a helper pool's worker that never returns (a library doing its
    network call on a ``ThreadPoolExecutor``): the interpreter joins such workers at exit."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    ThreadPoolExecutor(max_workers=1).submit(threading.Event().wait).result()
    raise AssertionError("unreachable")
