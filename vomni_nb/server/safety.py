"""Before any signal to a process group a registry row names: is it really the server we launched?

A row could be stale (the pid was reused), damaged, or planted. So a row's group is signalled only
when all of this holds (``why_unsafe`` returns None):
1. the group is not 0, 1, or our own (``launch.signal_safe``), and it is the row's pid: we launch
   every server as a session leader, so its pgid is its pid;
2. the pid is alive and started when the row says (pids are reused), and its group is that pgid;
3. its command line is a server launch of the row's model on the row's port.
"""

from __future__ import annotations

import logging
import os

import psutil

from vomni_nb.server import launch
from vomni_nb.server.registry import Entry, process_started
from vomni_nb.server.reporting import log_event

__all__ = ["why_unsafe", "end_group"]

log = logging.getLogger(__name__)


def why_unsafe(entry: Entry) -> str | None:
    """None when ``entry``'s group may be signalled, else why not (in words, for the log)."""
    if not launch.signal_safe(entry.pgid):
        return f"process group {entry.pgid} is ours, init's, or not a group"
    if entry.pgid != entry.pid:
        return f"pgid {entry.pgid} is not its pid {entry.pid} (our servers lead their own group)"
    started = process_started(entry.pid)
    if started is None:
        return f"pid {entry.pid} is gone"
    if abs(started - entry.pid_started) >= 0.5:
        return f"pid {entry.pid} is another process now (it started at {started:.0f}, not {entry.pid_started:.0f})"
    try:
        if os.getpgid(entry.pid) != entry.pgid:
            return f"pid {entry.pid} is in another process group now"
        cmdline = psutil.Process(entry.pid).cmdline()
    except (ProcessLookupError, psutil.Error) as exc:
        return f"pid {entry.pid} cannot be checked ({type(exc).__name__})"
    if entry.model not in cmdline or "--port" not in cmdline or str(entry.port) not in cmdline:
        return f"pid {entry.pid} is not a server of {entry.model} on port {entry.port}"
    return None


def end_group(entry: Entry, grace: float, why: str) -> bool:
    """Terminate ``entry``'s group if it is verified as ours; False (and a warning) when refused."""
    reason = why_unsafe(entry)
    if reason is not None:
        log_event(log, logging.WARNING, f"not signalling the registry row {entry.id}: {reason}", entry.api_key)
        return False
    log_event(log, logging.INFO, f"terminating {entry.model} (pid {entry.pid}, port {entry.port}): {why}")
    launch.terminate_group(entry.pgid, grace=grace)
    return True
