"""The policy's threads (``smtp_injection.server.PolicyThreads``): a call's answer or error
reaches its caller, no more threads than allowed run, and a call that never returns keeps
neither the shutdown nor the process's exit waiting (daemon threads)."""

from __future__ import annotations

import threading

import pytest

from smtp_injection.server import PolicyThreads


def test_answers_and_errors_reach_the_caller_within_the_thread_limit():
    pool = PolicyThreads(2)
    try:
        assert [pool.submit(pow, n, 2).result(5) for n in range(6)] == [0, 1, 4, 9, 16, 25]
        with pytest.raises(ZeroDivisionError):
            pool.submit(divmod, 1, 0).result(5)
        release = threading.Event()
        futures = [pool.submit(release.wait, 5) for _ in range(5)]
        assert len(pool.threads) == 2 and all(thread.daemon for thread in pool.threads)
        release.set()
        assert all(future.result(5) for future in futures)
    finally:
        pool.shutdown(wait=True)


def test_a_call_that_never_returns_keeps_nothing_waiting_and_calls_not_begun_are_canceled():
    pool = PolicyThreads(1)
    never = threading.Event()
    stuck = pool.submit(never.wait)
    queued = pool.submit(pow, 2, 2)
    while pool.running == 0:
        threading.Event().wait(0.01)
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled() and not stuck.done()
    assert pool.running == 1 and pool.threads[0].daemon  # the interpreter does not join it at exit
    with pytest.raises(RuntimeError):
        pool.submit(pow, 2, 2)
    never.set()
