"""scripts/run's supervisor: honcho (pinned in requirements.txt), with a stop grace of our choosing.

honcho stops every process when one exits or on SIGINT/SIGTERM, then SIGKILLs whatever still
runs ``honcho.manager.KILL_WAIT`` seconds later: 5, fixed, with no option to change it. A send
worker's warm shutdown ends the chunk it is relaying (up to ``ENGAGE_GENERATION_CHUNK_SIZE``
messages, each up to ``ENGAGE_RELAY_TIMEOUT`` seconds) and was seen SIGKILLed after 5 s on a
loaded machine, so its messages waited for the stale-claim reaper and could go out twice.
Here the grace is ``ENGAGE_STOP_GRACE`` seconds (scripts/run passes it; 1-3600, default 30).

The stop's SIGTERM goes to each process alone, not to its process group as honcho sends it:
every process of scripts/Procfile that has children (gunicorn, granian, the Celery workers)
stops them itself, in order, on its own SIGTERM. Sent to the whole group, a granian worker
could end before its main process read the signal, which then logged "Unexpected exit from
worker-1" and stopped with status 1 on a clean stop (a newcomer's finding). The SIGKILL after
the grace still goes to the whole group, so nothing outlives the stop.

Usage: ``python -m engage.supervise GRACE_SECONDS [honcho arguments...]``.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

import honcho.command
import honcho.compat
import honcho.manager

#: The stop grace's bounds, seconds (.env.example's ENGAGE_STOP_GRACE).
GRACE_RANGE = (1, 3600)


def grace_parse(text: str) -> int:
    """``text`` as a whole number of seconds within :data:`GRACE_RANGE`.

    Raises ``ValueError`` naming the setting and its range otherwise."""
    low, high = GRACE_RANGE
    try:
        grace = int(text)
    except ValueError:
        grace = low - 1
    if not low <= grace <= high:
        raise ValueError(f"ENGAGE_STOP_GRACE must be a whole number of seconds in {low}-{high}, not {text!r}")
    return grace


def _terminate_leader(_manager: honcho.compat.ProcessManager, pid: int) -> None:
    """SIGTERM to process ``pid`` alone (honcho's own sends it to the group ``pid`` leads)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError as exc:  # ended meanwhile, as honcho's own tolerates
        if exc.errno not in (errno.EPERM, errno.ESRCH):
            raise


def main(argv: list[str]) -> int:
    """Run honcho with ``argv[1:]`` after setting its kill wait to ``argv[0]`` seconds; returns
    honcho's exit status (2 and a line on stderr for a bad grace)."""
    if not argv:
        print("usage: python -m engage.supervise GRACE_SECONDS [honcho arguments...]", file=sys.stderr)
        return 2
    try:
        honcho.manager.KILL_WAIT = grace_parse(argv[0])  # read by Manager.loop at each turn
    except ValueError as exc:
        print(f"engage: {exc}", file=sys.stderr)
        return 2
    honcho.compat.ProcessManager.terminate = _terminate_leader
    try:
        honcho.command.main(argv[1:])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
