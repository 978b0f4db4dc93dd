"""In a real kernel: a server that never answers, then a server killed in the middle of a request. Each cell
ends with its error (short, saying what to do), not a hang, and the kernel goes on: the next cells run and
a healthy server answers them.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.kernels import KernelSession
from tests.support.silent import SilentServer
from tests.support.sims import IMAGE_MODEL, SimHandle

pytestmark = pytest.mark.kernel


def _error(reply: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[str, str]:
    assert reply["status"] == "error"
    shown = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert len(shown) == 1
    return shown[0]["ename"], "\n".join(shown[0]["traceback"])


def test_a_kernel_survives_a_silent_server_and_a_crash(start_sim: Callable[..., SimHandle]) -> None:
    slow = start_sim(IMAGE_MODEL, "--latency", "60")
    healthy = start_sim(IMAGE_MODEL)
    kernel = KernelSession()
    try:
        with SilentServer() as silent:
            reply, messages = kernel.run(f"from vomni_nb import OmniClient\n"
                                         f"OmniClient({silent.url!r}, model='m', timeout=1).image('a fox')")
            name, traceback = _error(reply, messages)
            assert name == "APITimeoutError" and "timeout=" in traceback
            assert len(traceback.splitlines()) < 15  # the cause and the advice, not a page of stack
        request = kernel.send(f"OmniClient({slow.url!r}).image('a fox', size='64x64')", allow_stdin=False)
        deadline = time.monotonic() + 60
        while httpx.get(slow.url + "/load", timeout=5).json()["server_load"] < 1:
            assert time.monotonic() < deadline, "the kernel's request never reached the server"
            time.sleep(0.02)
        slow.process.send_signal(signal.SIGKILL)
        name, traceback = _error(*kernel.collect(request))
        assert name == "APIConnectionError" and "%omni_server status" in traceback
        reply, messages = kernel.run(f"print(OmniClient({healthy.url!r}).image('a fox', size='64x64', seed=4).seed)")
        assert reply["status"] == "ok"
        assert "4" in "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")
    finally:
        kernel.close()
