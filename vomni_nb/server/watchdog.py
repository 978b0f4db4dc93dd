"""``python .../watchdog.py --owner PID --pgid G``: end server group G when kernel PID dies.

Why a watchdog and not PR_SET_PDEATHSIG on the server: the death signal fires when the *thread*
that forked the child exits, not the process. A kernel may start a server from a short-lived
thread (a widget callback, a thread pool), which would kill a healthy server; and the signal only
reaches the server itself, not the engine workers it spawned into its process group.

So this process watches instead. It is a child of the kernel: when the kernel dies (even by
SIGKILL) it is re-parented at once, so ``getppid() != owner`` is an exact, cheap test that is not
fooled by pid reuse or by the dead kernel lingering as an unreaped zombie. PR_SET_PDEATHSIG is
still set, but only as a wake-up: the signal makes us look at once; a spurious one (the forking
thread ended, the kernel lives) changes nothing. Then it SIGTERMs the group, waits, SIGKILLs.

The wake-up signal is blocked and taken with ``sigtimedwait``, never by a Python handler: a handler
runs in the loop's own thread between any two bytecodes, so one that woke the loop through a
``threading.Event`` deadlocked whenever it landed while that thread held the Event's lock, and the
group then outlived its kernel.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import time
from collections.abc import Sequence

if __package__:
    from vomni_nb.server.launch import group_alive, terminate_group
else:
    # Run by path (as spawn_watchdog does): the script's folder is on sys.path, so this is the
    # stdlib-only launch.py beside it, without importing the whole vomni_nb package (httpx...).
    from launch import group_alive, terminate_group  # type: ignore[no-redef]

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1
_POLL_S = 0.1
_WAKE_SIGNAL = signal.SIGUSR1


def _arm_parent_death_wakeup() -> bool:
    """Have Linux send the (blocked) wake-up signal when the kernel dies; True when it can be waited for."""
    if not sys.platform.startswith("linux") or not hasattr(signal, "sigtimedwait"):
        return False
    # Blocked before it is asked for, so it is never delivered to a default action (which would end us).
    signal.pthread_sigmask(signal.SIG_BLOCK, {_WAKE_SIGNAL})
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, _WAKE_SIGNAL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # sigtimedwait still paces the polling
    return True


def _pause(wakeable: bool) -> None:
    """One poll interval, cut short by the wake-up signal when it can be waited for."""
    if wakeable:
        signal.sigtimedwait({_WAKE_SIGNAL}, _POLL_S)
    else:
        time.sleep(_POLL_S)


def owner_gone(owner_pid: int) -> bool:
    return os.getppid() != owner_pid


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vomni_nb.server.watchdog")
    parser.add_argument("--owner", type=int, required=True)
    parser.add_argument("--pgid", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wakeable = _arm_parent_death_wakeup()
    if owner_gone(args.owner):
        # The kernel died between spawning us and now (or we were started by someone else).
        terminate_group(args.pgid, grace=3.0)
        return 0
    while group_alive(args.pgid):
        if owner_gone(args.owner):
            terminate_group(args.pgid, grace=3.0)
            return 0
        _pause(wakeable)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
