"""Ports and process groups, with real sockets and processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from vomni_nb.server import launch


def _port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def test_free_port_is_free() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = _port_of(sock)
    assert launch.port_state("127.0.0.1", port) == "free"


def test_listening_port_is_held() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        assert launch.port_state("127.0.0.1", _port_of(sock)) == "listening"


def test_bound_not_listening_reuseport_socket_is_held() -> None:
    # What a starting (or stale) vLLM looks like: bound with SO_REUSEADDR + SO_REUSEPORT, not listening.
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("0.0.0.0", 0))
        assert launch.port_state("127.0.0.1", _port_of(sock)) == "bound"


def test_time_wait_leftovers_do_not_hold_a_port() -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as vLLM and uvicorn do
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = _port_of(server)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first, so TIME_WAIT sits on `port`
    client.recv(1)
    client.close()
    server.close()
    deadline = time.monotonic() + 2
    while not launch._time_wait_on(port) and time.monotonic() < deadline:
        time.sleep(0.01)  # FIN_WAIT2 -> TIME_WAIT takes a moment
    assert launch.port_state("127.0.0.1", port) == "free"


def test_a_clients_idle_keep_alive_connection_does_not_hold_a_stopped_servers_port() -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = _port_of(server)
    with socket.create_connection(("127.0.0.1", port)):  # a notebook's client, never closed meanwhile
        accepted, _ = server.accept()
        accepted.close()  # the server stops: its side waits in FIN_WAIT for the client's close
        server.close()
        assert launch.port_state("127.0.0.1", port) == "free"


def test_find_free_port_skips_held_and_avoided() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        held = _port_of(sock)
        found = launch.find_free_port("127.0.0.1", held, avoid=frozenset({held + 1}))
    assert found not in (held, held + 1) and found > held


def test_terminate_group_ends_the_leader_and_its_children(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys, time, signal\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"  # the leader leaves its child behind
        "subprocess.Popen([sys.executable, '-c', 'import signal, time\\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\nwhile True: time.sleep(1)'])\n"
        "print('up', flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    proc = launch.spawn_server([sys.executable, "-c", script], env={}, log_path=tmp_path / "log")
    try:
        deadline = time.monotonic() + 10
        while len(launch.group_members(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(launch.group_members(proc.pid)) == 2
        # The child ignores SIGTERM, so only the SIGKILL after the grace period ends it.
        assert launch.terminate_group(proc.pid, proc, grace=0.5)
        assert not launch.group_alive(proc.pid)
        assert proc.returncode == 0
    finally:
        # Whatever failed above, no orphan (the child ignores SIGTERM) outlives the test.
        if launch.group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def test_server_runs_in_its_own_session(tmp_path: Path) -> None:
    proc = launch.spawn_server([sys.executable, "-c", "import time; time.sleep(30)"], env={},
                               log_path=tmp_path / "log")
    try:
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)
    finally:
        launch.terminate_group(proc.pid, proc, grace=2)


def _kernel_with_a_server(tmp_path: Path) -> tuple[subprocess.Popen[str], int, int]:
    """A stand-in "kernel": a python process that starts a server group and its watchdog, then sleeps.
    Returns the process, the group and the watchdog's pid."""
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from vomni_nb.server import launch\n"
        f"p = launch.spawn_server([sys.executable, '-c', 'import time; time.sleep(60)'], env={{}}, "
        f"log_path=Path({str(tmp_path / 'srv.log')!r}))\n"
        "w = launch.spawn_watchdog(os.getpid(), p.pid)\n"
        "print(p.pid, w.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    kernel = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert kernel.stdout is not None
    pgid, watchdog = map(int, kernel.stdout.readline().split())
    return kernel, pgid, watchdog


def _kill(kernel: subprocess.Popen[str]) -> None:
    kernel.kill()
    kernel.wait()
    if kernel.stdout is not None:
        kernel.stdout.close()


def _gone_within(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while launch.group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not launch.group_alive(pgid)


def test_watchdog_ends_the_group_when_its_owner_dies(tmp_path: Path) -> None:
    kernel, pgid, _ = _kernel_with_a_server(tmp_path)
    # No need to wait for the watchdog to start: one that finds its owner gone already ends the group at once.
    assert launch.group_alive(pgid)
    _kill(kernel)
    assert _gone_within(pgid, 5)


def _catches_or_blocks(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has armed itself for ``signum`` (caught or blocked), from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    bit = 1 << (signum - 1)
    return any(int(fields[name].strip(), 16) & bit for name in ("SigBlk", "SigCgt"))


def test_a_storm_of_wake_up_signals_does_not_hang_the_watchdog(tmp_path: Path) -> None:
    # The wake-up signal (the kernel's death, by PR_SET_PDEATHSIG) used to be taken by a Python handler
    # that set a threading.Event: landing while the loop held the Event's lock, it deadlocked the
    # watchdog, and the server then outlived its kernel. Any number of wake-ups must leave it working.
    kernel, pgid, watchdog = _kernel_with_a_server(tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not _catches_or_blocks(watchdog, signal.SIGUSR1):
            assert time.monotonic() < deadline, "the watchdog never armed its wake-up"
            time.sleep(0.02)
        storm_ends = time.monotonic() + 1.0
        while time.monotonic() < storm_ends:
            os.kill(watchdog, signal.SIGUSR1)
        assert launch.group_alive(pgid), "a wake-up alone (the kernel alive) must not end the server"
    finally:
        _kill(kernel)
    gone = _gone_within(pgid, 10)
    if not gone:
        launch.terminate_group(pgid, grace=1)
    assert gone, "the watchdog stopped working after the wake-up signals: the server outlived its kernel"
