"""The Server handle and its status line: what `%omni_server list` and `server.status()` print, and the
handle's own stop/restart, on the stand-in `vllm` (real processes)."""

from __future__ import annotations

from typing import Any

import pytest

from vomni_nb.server import ServerManager
from vomni_nb.server.handle import ServerStatus
from vomni_nb.server.launch import group_alive


def _status(**changes: Any) -> ServerStatus:
    base: dict[str, Any] = {"name": "img", "model": "org/m", "url": "http://127.0.0.1:8091", "kind": "sim",
                            "state": "ready", "pid": 42, "uptime_s": 30.0}
    return ServerStatus(**{**base, **changes})


@pytest.mark.parametrize(("uptime", "said"), [(30.0, "up 30 s"), (600.0, "up 10 min"), (9000.0, "up 2.5 h")])
def test_the_status_line_says_uptime_in_units_a_person_reads(uptime: float, said: str) -> None:
    assert str(_status(uptime_s=uptime)) == f"img: ready — http://127.0.0.1:8091 — pid 42 — {said} — sim"


def test_the_status_line_of_a_broken_or_attached_server() -> None:
    broken = _status(state="exited", kind="vllm", keep=True, uptime_s=50.0, cause="CUDA out of memory",
                     advice="use more or larger GPUs")
    # No uptime once it is not ready: the figure would read as if it were still serving.
    assert broken.line() == ("img: exited — http://127.0.0.1:8091 — pid 42 — vllm, kept\n"
                             "  cause: CUDA out of memory\n  advice: use more or larger GPUs")
    attached = _status(pid=None, uptime_s=None, owned=False)
    assert attached.line() == "img: ready — http://127.0.0.1:8091 — sim, attached"


def test_the_handle_restarts_and_stops_its_server(stand_in_manager: ServerManager) -> None:
    manager = stand_in_manager
    server = manager.start("Qwen/Qwen-Image")
    first_pid, first_start = server.pid, server.started_at
    assert server.restart() is server and server.pid not in (None, first_pid)
    assert server.status().state == "ready" and (server.started_at or 0) > (first_start or 0)
    pid = server.pid
    server.stop()
    assert server.pid is None and server.started_at is None and server.returncode() is None
    assert pid is not None and not group_alive(pid) and manager.servers == []


def test_an_attached_handle_has_no_process_of_ours(stand_in_manager: ServerManager, image_server: Any) -> None:
    manager = stand_in_manager
    server = manager.attach(image_server.url)
    assert server.returncode() is None and server.logs() == "" and server.started_at is None
    server.stop()  # forgotten, never stopped: the simulator still answers
    assert manager.servers == [] and image_server.process.poll() is None
