"""The generating magics in a real kernel (jupyter_client): the live wait line is replaced by the result,
and an interrupt ends the requests (the simulator logs the abort) and leaves the kernel ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.kernels import KernelSession
from tests.support.magics import aborted
from tests.support.sims import IMAGE_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KernelSession]:
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))
    session = KernelSession()
    try:
        yield session
    finally:
        session.close()


def _attach(kernel: KernelSession, *urls: str) -> None:
    attach = "; ".join(f"vomni_nb.default_manager().attach({url!r})" for url in urls)
    reply, _ = kernel.run(f"%load_ext vomni_nb\nimport vomni_nb; {attach}")
    assert reply["status"] == "ok", reply


def _running(sim: Any) -> int:
    text = httpx.get(sim.url + "/metrics", timeout=5.0).text
    line = next(line for line in text.splitlines() if line.startswith("vllm:num_requests_running"))
    return int(float(line.rsplit(" ", 1)[1]))


def _wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _displays(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(m["msg_type"], m["content"]) for m in messages if m["msg_type"] in ("display_data", "update_display_data")]


def test_the_wait_line_is_replaced_by_the_image(kernel: KernelSession, start_sim: Any) -> None:
    slow = start_sim(IMAGE_MODEL, "--latency", "1.6")
    _attach(kernel, slow.url)
    reply, messages = kernel.run("%%omni_image --size 32x32 --seed 3\na lighthouse")
    assert reply["status"] == "ok", reply
    shown = _displays(messages)
    first_type, first = shown[0]
    assert first_type == "display_data" and first["data"]["text/plain"].startswith("◔ an image 32x32 on ")
    display_id = first["transient"]["display_id"]
    last_type, last = shown[-1]
    assert last_type == "update_display_data" and last["transient"]["display_id"] == display_id
    assert "image/png" in last["data"] and last["metadata"]["vomni_nb"]["seed"] == 3
    assert all(kind == "update_display_data" for kind, _ in shown[1:])  # one output, updated in place


def _interrupt_when(kernel: KernelSession, sim: Any, code: str, running: int) -> tuple[dict[str, Any], list[Any]]:
    before = aborted(sim)
    msg_id = kernel.send(code, allow_stdin=True)
    _wait_until(lambda: _running(sim) == running)
    time.sleep(1.3)  # long enough for the live output to show
    kernel.km.interrupt_kernel()
    reply, messages = kernel.collect(msg_id, timeout=30)
    _wait_until(lambda: aborted(sim) == before + running)
    assert sim.log().count("aborted.") >= running
    return reply, messages


def test_interrupting_an_image_aborts_the_request_and_the_next_cell_runs(kernel: KernelSession,
                                                                         start_sim: Any) -> None:
    stuck = start_sim(IMAGE_MODEL, "--latency", "60")
    _attach(kernel, stuck.url)
    reply, messages = _interrupt_when(kernel, stuck, "%%omni_image --size 32x32\na lighthouse", running=1)
    assert reply["status"] == "error" and reply["ename"] == "Interrupted"  # a KeyboardInterrupt, shown short
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert len(errors[0]["traceback"]) == 2 and "the server aborted the request" in errors[0]["traceback"][0]
    assert "✗ interrupted" in _displays(messages)[-1][1]["data"]["text/plain"]
    assert _running(stuck) == 0
    after, outputs = kernel.run("print(6 * 7)")
    assert after["status"] == "ok" and any("42" in m["content"].get("text", "") for m in outputs)


def test_interrupting_a_sweep_aborts_its_requests_and_keeps_the_finished_cells(kernel: KernelSession,
                                                                              start_sim: Any) -> None:
    # Two replicas: the quick one's four workers take four cells and finish them; the stuck one holds two.
    quick = start_sim(IMAGE_MODEL)
    stuck = start_sim(IMAGE_MODEL, "--latency", "60")
    _attach(kernel, quick.url, stuck.url)
    reply, messages = _interrupt_when(kernel, stuck, "%%omni_image --seed 1..6 --size 32x32 --out grid\na lighthouse",
                                      running=2)
    assert reply["status"] == "error" and reply["ename"] == "Interrupted"
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert "interrupted; the server aborted the rest after 4 of 6 requests" in errors[0]["traceback"][0]
    final = _displays(messages)[-1][1]
    assert final["data"]["text/plain"].startswith("✗ interrupted after 4 of 6 requests")
    assert final["data"]["text/html"].count("<img ") == 4 and final["metadata"]["vomni_nb"]["interrupted"] is True
    after, outputs = kernel.run("print(grid.interrupted, len(grid.images), len(grid.cells))")
    assert after["status"] == "ok" and any("True 4 6" in m["content"].get("text", "") for m in outputs)
    assert _running(stuck) == 0
