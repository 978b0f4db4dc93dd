"""Issue 14.17: registry rows are not trusted. Before any signal the manager checks pid, start time, process
group and command line; a malformed row is skipped and reported; bad types never crash ``start`` or ``list``.

The attacks run against real processes: a "victim" that a planted row names, and a "kernel" (a Python
process in a session of its own, so a regression that signals group 0 ends that process, not pytest).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.sims import STAND_IN, free_port
from vomni_nb.server import launch
from vomni_nb.server.registry import Entry, process_started
from vomni_nb.server.safety import why_unsafe

MODEL = "Qwen/Qwen-Image"


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated program leading its own process group (what a planted row points the manager at)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    yield proc
    if launch.group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _row(target: int, **changes: object) -> dict[str, object]:
    """A row naming process ``target`` as a server (pid, group and start time all its own), then ``changes``."""
    row: dict[str, object] = dict(
        id=f"planted-{target}", pid=target, pgid=target, pid_started=process_started(target), host="127.0.0.1",
        port=free_port(), model=MODEL, kind="vllm", args=[], identity="0" * 16, owner_pid=_dead_pid(),
        owner_started=1000.0, started_at=time.time(), keep=False,
        log_path="/tmp/Qwen_Qwen-Image-8091-20250101-000000-abcdef.log", api_key=None,
    )
    row.update(changes)
    return row


def _run_kernel(registry: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VOMNI_REGISTRY_DIR": str(registry), "STANDIN_DELAY": "0.1",
           "PATH": f"{STAND_IN}{os.pathsep}{os.environ['PATH']}"}
    script = ("from vomni_nb.server import ServerManager\nm = ServerManager()\n" + textwrap.dedent(code)
              + "\nm.shutdown()\n")
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          start_new_session=True)


def test_planted_rows_never_get_a_signal(tmp_path: Path, victim: subprocess.Popen[bytes]) -> None:
    registry = tmp_path / "registry"
    registry.mkdir(mode=0o700)
    rows = [
        _row(victim.pid, pid_started=None),                  # "pid_started: null": once read as "any start time"
        _row(victim.pid, id="own-group", pgid=-1),           # replaced below by the kernel's own group
        _row(victim.pid, id="zero", pgid=0),                 # killpg(0) is the caller's own group
        _row(victim.pid, id="init", pgid=1),
        _row(victim.pid, id="lookalike"),                    # right pid, start time and group; not a server
        _row(victim.pid, id="other-group", pgid=os.getpgrp()),  # pytest's group: not the victim's, not the kernel's
    ]
    code = f"""
        import json, os
        rows = json.loads({json.dumps(json.dumps(rows))})
        rows[1]["pgid"] = os.getpgrp()
        path = m.registry.path
        path.write_text(json.dumps({{"version": 1, "servers": rows}}))
        server = m.start({MODEL!r}, port="auto")         # the start that used to end "orphans"
        statuses = m.list_servers()
        print(json.dumps({{"listed": [s.pid for s in statuses], "problems": m.registry.problems}}))
    """
    done = _run_kernel(registry, code)
    assert done.returncode == 0, done.stderr  # a regression signalling group 0 would end this "kernel" instead
    assert victim.poll() is None and launch.group_alive(victim.pid)
    said = json.loads(done.stdout.splitlines()[-1])
    assert victim.pid not in said["listed"]  # no planted row is shown as a server either
    problems = "\n".join(said["problems"])
    assert "pid_started is missing" in problems and "pgid is 0" in problems and "pgid is 1" in problems
    assert "ours, init's, or not a group" in problems      # the kernel's own group
    assert f"not a server of {MODEL}" in problems          # the look-alike
    assert "not its pid" in problems                        # another group than its pid's


def test_rows_with_bad_types_never_crash_start_or_list(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    registry.mkdir(mode=0o700)
    bad = [_row(os.getpid(), **{field: value}) for field, value in (
        ("pid", "123"), ("port", [1]), ("keep", "yes"), ("args", "--x"), ("pid_started", float("nan")),
        ("model", None), ("kind", 3), ("host", "a b"), ("log_path", "relative.log"), ("pgid", True))]
    rows = [*bad, "not a row", 7, None, {"servers": []}]
    (registry / "servers.json").write_text(json.dumps({"version": 1, "servers": rows}, default=str))
    done = _run_kernel(registry, f"""
        s = m.start({MODEL!r}, port="auto")
        print(len(m.list_servers()), len(m.registry.problems))
    """)
    assert done.returncode == 0, done.stderr
    listed, problems = map(int, done.stdout.split())
    assert listed == 1 and problems == len(rows)
    kept = json.loads((registry / "servers.json").read_text())["servers"]
    assert len(kept) == len(rows)  # skipped rows are left as they were, never acted on


def test_why_unsafe_accepts_only_our_own_server() -> None:
    spec_port = free_port()
    proc = launch.spawn_server([str(STAND_IN / "vllm"), "serve", MODEL, "--omni", "--host", "127.0.0.1",
                                "--port", str(spec_port)], env={**os.environ, "STANDIN_DELAY": "30"},
                               log_path=Path(f"/tmp/vomni-safety-{os.getpid()}-{spec_port}.log"))
    try:
        deadline = time.monotonic() + 10
        while MODEL not in psutil.Process(proc.pid).cmdline() and time.monotonic() < deadline:
            time.sleep(0.01)  # until the fork has exec'd the stand-in
        started = process_started(proc.pid) or 0.0
        good = Entry(id="x", pid=proc.pid, pgid=proc.pid, pid_started=started, host="127.0.0.1", port=spec_port,
                     model=MODEL, kind="vllm", args=(), identity="i", owner_pid=1, owner_started=1.0,
                     started_at=time.time(), keep=False, log_path="/tmp/x.log")
        assert why_unsafe(good) is None
        from dataclasses import replace

        assert "another process" in (why_unsafe(replace(good, pid_started=started - 100)) or "")
        assert "not a server" in (why_unsafe(replace(good, port=spec_port + 1)) or "")
        assert "ours, init's" in (why_unsafe(replace(good, pgid=os.getpgrp())) or "")
    finally:
        launch.terminate_group(proc.pid, proc, grace=1.0)
        Path(f"/tmp/vomni-safety-{os.getpid()}-{spec_port}.log").unlink(missing_ok=True)


def test_signals_to_group_zero_one_or_our_own_are_refused() -> None:
    for pgid in (0, 1, os.getpgrp(), -5):
        assert not launch.signal_safe(pgid)
        with pytest.raises(ValueError, match="refusing to signal"):
            launch.terminate_group(pgid, grace=0.1)
