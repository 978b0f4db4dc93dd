"""%omni_server in a real Jupyter kernel (jupyter_client): interrupts, shutdown, restart, SIGKILL.

The servers run in their own sessions, so an interrupt (SIGINT to the kernel's process group)
does not reach them; when the kernel goes, in any of the three ways, the whole server group —
the stand-in's engine worker included — is gone within 5 s.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from jupyter_client.manager import KernelManager

from tests.support.sims import IMAGE_MODEL, free_port
from vomni_nb.server.launch import group_alive, group_members

pytestmark = pytest.mark.kernel

from tests.support.sims import STAND_IN  # noqa: E402
REPO = Path(__file__).resolve().parents[2]


def _gone_within(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not group_alive(pgid)


def _what_is_left(pgid: int, watchdog: int) -> str:
    """The group's live members and the watchdog's state, from /proc: what a failure needs to be understood."""
    def state(pid: int) -> str:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return f"{pid}: gone"
        return f"{pid}: state {stat[stat.rfind(')') + 2:].split()[0]}, {cmdline[:120]}"
    members = "; ".join(state(pid) for pid in group_members(pgid)) or "none"
    return f"group {pgid} members: {members}. watchdog {state(watchdog)}"


class Kernel:
    def __init__(self, registry: Path) -> None:
        env = {**os.environ, "PATH": f"{STAND_IN}{os.pathsep}{os.environ['PATH']}", "VOMNI_REGISTRY_DIR": str(registry),
               "STANDIN_DELAY": "0.1", "PYTHONPATH": str(REPO)}
        env.pop("STANDIN_FAIL", None)
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(REPO))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = self.kc.execute(code)
        return self.collect(msg_id, timeout)

    def collect(self, msg_id: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        outputs = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            outputs.append(msg)
        while True:  # skip replies to earlier requests (wait_for_ready may have sent several kernel_info requests)
            reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], outputs

    def value(self, expression: str) -> str:
        reply, outputs = self.run(f"print({expression})")
        assert reply["status"] == "ok", reply
        return "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream").strip()

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.is_alive():
            self.km.shutdown_kernel(now=True)
        else:
            self.km.cleanup_resources()
        self.km.context.destroy(linger=0)  # ours alone (the manager made it); avoids an unclosed-context warning


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    k = Kernel(tmp_path / "registry")
    yield k
    k.close()


def _server_ids(kernel: Kernel) -> tuple[int, int, str]:
    pid, pgid, url = kernel.value("(lambda s: f'{s.pid} {s.pgid} {s.url}')(__import__('vomni_nb').default_manager().get())").split()
    return int(pid), int(pgid), url


def test_interrupt_spares_the_server_and_shutdown_ends_it(kernel: Kernel) -> None:
    reply, outputs = kernel.run("%load_ext vomni_nb")
    assert reply["status"] == "ok", reply
    reply, outputs = kernel.run(f"%omni_server start {IMAGE_MODEL} --sim -- --latency 5")
    assert reply["status"] == "ok", reply
    shown = [m["content"]["data"] for m in outputs if m["msg_type"] in ("display_data", "update_display_data")]
    assert shown, "the live status line should be displayed"
    assert "ready at" in shown[-1]["text/plain"] and "text/html" in shown[-1]
    assert sum(m["msg_type"] == "display_data" for m in outputs) == 1  # one output, updated in place
    pid, pgid, url = _server_ids(kernel)

    # A request that takes 5 s, interrupted while it is under way: KeyboardInterrupt in the kernel only.
    kernel_pid = int(kernel.value("__import__('os').getpid()"))
    msg_id = kernel.kc.execute(
        f"import httpx\nhttpx.post({url!r} + '/v1/images/generations', "
        f"json={{'prompt': 'slow', 'size': '64x64'}}, timeout=60)"
    )
    # Interrupt only once the kernel holds a connection to the server, however busy the machine is.
    port = int(url.rsplit(":", 1)[1])
    deadline = time.monotonic() + 30
    while not any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
                  for c in psutil.Process(kernel_pid).net_connections(kind="tcp")):
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.02)
    kernel.km.interrupt_kernel()
    reply, _ = kernel.collect(msg_id, timeout=30)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    assert group_alive(pgid) and httpx.get(url + "/health").status_code == 200

    reply, outputs = kernel.run(f"%omni_server start {IMAGE_MODEL} --sim -- --latency 5")
    shown = [m["content"]["data"] for m in outputs if m["msg_type"] in ("display_data", "update_display_data")]
    assert "reusing" in shown[-1]["text/plain"]
    assert _server_ids(kernel)[0] == pid
    kernel.run("%omni_server restart")
    new_pid, new_pgid, _ = _server_ids(kernel)
    assert new_pid != pid and _gone_within(pgid, 1.0)

    kernel.km.shutdown_kernel(now=False)
    assert _gone_within(new_pgid, 5.0)


def test_kernel_restart_and_sigkill_leave_no_server_process(kernel: Kernel) -> None:
    kernel.run("%load_ext vomni_nb")
    reply, _ = kernel.run(f"%omni_server start Qwen/Qwen-Image --port {free_port()}")
    assert reply["status"] == "ok", reply
    _, pgid, _ = _server_ids(kernel)
    assert len(group_members(pgid)) >= 2  # the stand-in and its engine worker

    kernel.km.restart_kernel(now=False)
    assert _gone_within(pgid, 5.0)

    kernel.kc.wait_for_ready(timeout=60)
    kernel.run("%load_ext vomni_nb")
    reply, _ = kernel.run(f"%omni_server start Qwen/Qwen-Image --port {free_port()}")
    assert reply["status"] == "ok", reply
    _, pgid, _ = _server_ids(kernel)
    assert len(group_members(pgid)) >= 2
    kernel_pid = int(kernel.value("__import__('os').getpid()"))
    watchdog = int(kernel.value("__import__('vomni_nb').default_manager().get().run.watchdog.pid"))
    os.kill(kernel_pid, signal.SIGKILL)
    assert _gone_within(pgid, 5.0), _what_is_left(pgid, watchdog)
