"""Processes and ports: launch a server in its own session, find free ports, end a whole process group.

A server runs in a new session (``start_new_session``), so the kernel's interrupt (jupyter_client
signals the kernel's whole process group) never reaches it, and so that the server and every
worker it spawns share one process group we can end together with ``killpg``.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "spawn_server",
    "spawn_watchdog",
    "group_members",
    "group_alive",
    "group_listens",
    "terminate_group",
    "signal_safe",
    "port_state",
    "port_is_free",
    "find_free_port",
    "DEFAULT_PORT",
]

DEFAULT_PORT = 8091  # the port every vLLM-Omni example uses


def spawn_server(cmd: Sequence[str], *, env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` as a session leader with stdout and stderr written to the new file ``log_path``.

    The log is created exclusively and never through a symlink: a file planted at that name (by
    another user in a shared folder, say) is refused rather than written into.
    """
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(log_path, flags, 0o600)
    try:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(fd)


def spawn_watchdog(owner_pid: int, pgid: int) -> subprocess.Popen[bytes]:
    """A tiny process that ends group ``pgid`` as soon as the kernel ``owner_pid`` dies (even by SIGKILL).

    It runs in its own session so kernel interrupts leave it alone; see ``watchdog.py`` for why this
    beats setting PR_SET_PDEATHSIG on the server itself.
    """
    script = Path(__file__).with_name("watchdog.py")
    cmd = [sys.executable, "-s", str(script), "--owner", str(owner_pid), "--pgid", str(pgid)]
    return subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, pgid) of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode(errors="replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return fields[0], int(fields[2])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of group ``pgid``."""
    if not os.path.isdir("/proc"):
        return [pgid] if group_alive(pgid) else []
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
                members.append(int(entry))
    return members


def group_alive(pgid: int) -> bool:
    """Whether any live process is left in group ``pgid``."""
    if pgid <= 0:
        return False  # killpg would read 0 as "our own group" and a negative number as an error
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if os.path.isdir("/proc"):
        # killpg counts zombies; an unreaped zombie is not a running server.
        return bool(group_members(pgid))
    return True


def group_listens(pgid: int, port: int) -> bool | None:
    """Whether a process of group ``pgid`` listens on TCP ``port``; None when this cannot be told here."""
    import psutil

    members = group_members(pgid)
    if not members:
        return False
    for pid in members:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        except (psutil.AccessDenied, NotImplementedError):
            return None
        if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections):
            return True
    return False


def signal_safe(pgid: int) -> bool:
    """Whether group ``pgid`` may be signalled at all: never 0 (our own group, to killpg), 1, or our own group."""
    return type(pgid) is int and pgid > 1 and pgid != os.getpgrp()


def _signal_group(pgid: int, sig: int) -> None:
    if not signal_safe(pgid):
        raise ValueError(f"refusing to signal process group {pgid!r}: it is ours, init's, or not a group")
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_group(
    pgid: int, leader: subprocess.Popen[bytes] | None = None, *, grace: float = 5.0, poll: float = 0.02
) -> bool:
    """SIGTERM the whole group, wait up to ``grace`` seconds, then SIGKILL what is left.

    Returns True when nothing of the group is left alive. ``leader`` (our child) is reaped on the way
    so it does not linger as a zombie.
    """
    _signal_group(pgid, signal.SIGTERM)
    gone = _wait_group_gone(pgid, leader, grace, poll)
    if not gone:
        _signal_group(pgid, signal.SIGKILL)
        gone = _wait_group_gone(pgid, leader, 2.0, poll)
    if leader is not None and gone:
        leader.wait(1.0)  # it is dead: this only reaps the zombie
    return gone


def _wait_group_gone(pgid: int, leader: subprocess.Popen[bytes] | None, timeout: float, poll: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if leader is not None:
            leader.poll()
        if not group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


# FIN_WAIT1, FIN_WAIT2, TIME_WAIT, LAST_ACK, CLOSING: connections a stopped server closed but the
# kernel still tracks (FIN_WAIT2 stays while a notebook client keeps its idle keep-alive connection).
_CLOSING_STATES = frozenset({"04", "05", "06", "09", "0B"})


def _time_wait_on(port: int) -> bool:
    """Whether /proc/net/tcp* lists a closing leftover (TIME_WAIT, FIN_WAIT2, ...) on local ``port``."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle, None)
                for row in handle:
                    fields = row.split()
                    if len(fields) > 3 and fields[1].endswith(suffix) and fields[3] in _CLOSING_STATES:
                        return True
        except OSError:
            continue
    return False


def _try_bind(host: str, port: int, *, reuse_addr: bool) -> int | None:
    """Bind (and listen) a test socket; the errno on failure, None on success."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError as exc:
            return exc.errno or errno.EADDRINUSE
    return None


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_state(host: str, port: int) -> str:
    """``"free"``, ``"listening"`` (something accepts connections) or ``"bound"`` (held, not listening).

    vLLM binds with SO_REUSEADDR and SO_REUSEPORT long before it listens, and a second server
    with SO_REUSEPORT could share the port silently. A plain bind (no options) fails for any holder,
    but also for TIME_WAIT leftovers of a stopped server; a SO_REUSEADDR bind (what vLLM and
    uvicorn do) ignores those leftovers but also a bound, not-yet-listening server. So: plain bind
    first, and when only the SO_REUSEADDR bind works, call the port free only if TIME_WAIT entries
    explain the plain failure.
    """
    if _try_bind(host, port, reuse_addr=False) is None:
        return "free"
    if _try_bind(host, port, reuse_addr=True) is not None:
        return "listening" if _answers(host, port) else "bound"
    return "free" if _time_wait_on(port) else "bound"


def port_is_free(host: str, port: int) -> bool:
    return port_state(host, port) == "free"


def find_free_port(host: str, start: int = DEFAULT_PORT, *, avoid: frozenset[int] = frozenset(), tries: int = 200) -> int:
    """The first free port from ``start`` upward (skipping ``avoid``)."""
    for port in range(start, min(start + tries, 65536)):
        if port not in avoid and port_is_free(host, port):
            return port
    raise OSError(errno.EADDRINUSE, f"no free port in {start}..{start + tries - 1}")
