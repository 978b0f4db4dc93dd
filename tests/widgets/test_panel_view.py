"""The server panel's data without a kernel: nvidia-smi's CSV read into GPU memory (parsing, and the stand-in
nvidia-smi run for real), a server's memory summed over its process tree, rows built from ServerStatus
snapshots, the static table and its text twin, log tails without health checks, and the panel's own checks."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from vomni_nb.errors import InvalidRequestError
from vomni_nb.server import ServerManager, ServerStatus
from vomni_nb.widgets import ServerPanel
from vomni_nb.widgets._gpu import GpuMemory, parse_apps_csv, parse_gpu_csv, read_gpu_memory, server_memory_mib
from vomni_nb.widgets._panel_view import (PanelSnapshot, human_duration, log_tail, memory_text, row_for,
                                          static_bundle)
from tests.support.sims import STAND_IN

GPU_CSV = "0, NVIDIA H100 80GB HBM3, 30925, 81559\n1, NVIDIA H100 80GB HBM3, [N/A], 81559\nnot a line\n"


def test_nvidia_smi_csv_is_read_and_odd_lines_skipped() -> None:
    assert parse_gpu_csv(GPU_CSV) == (GpuMemory(0, "NVIDIA H100 80GB HBM3", 30925.0, 81559.0),)
    assert parse_apps_csv("4242, 30208\n4242, 100\n77, [N/A]\nNo running processes found\n") == {4242: 30308.0}


def test_the_stand_in_nvidia_smi_reports_memory_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        monkeypatch.setenv("STANDIN_GPU_APPS", f"{child.pid}:2048 999999:512")
        snapshot = read_gpu_memory(str(STAND_IN / "nvidia-smi"))
        assert snapshot is not None and [gpu.index for gpu in snapshot.gpus] == [0, 1]
        assert server_memory_mib(snapshot, child.pid) == 2048.0
        import os

        assert server_memory_mib(snapshot, os.getpid()) == 2048.0  # the child is in this process's tree
        assert server_memory_mib(snapshot, None) is None and server_memory_mib(None, child.pid) is None
    finally:
        child.kill()
        child.wait()
    monkeypatch.setenv("STANDIN_NO_GPU", "1")
    assert read_gpu_memory(str(STAND_IN / "nvidia-smi")) is None
    assert read_gpu_memory("no-such-nvidia-smi") is None


def test_people_read_durations_and_memory() -> None:
    assert [human_duration(s) for s in (None, 5.4, 300, 3 * 3600 + 5 * 60)] == ["", "5 s", "5 min", "3 h 05 min"]
    assert [memory_text(m) for m in (None, 512, 30512)] == ["", "512 MiB", "29.8 GiB"]


def test_log_tails_leave_out_health_checks() -> None:
    log = "\n".join(["starting", 'INFO: 127.0.0.1:1 - "GET /health HTTP/1.1" 200 OK', "ready", "",
                     'INFO: 127.0.0.1:1 - "GET /health HTTP/1.1" 503 Service Unavailable', "last"])
    assert log_tail(log, 3) == 'ready\nINFO: 127.0.0.1:1 - "GET /health HTTP/1.1" 503 Service Unavailable\nlast'
    assert log_tail(log, 0) == ""


def _status(**changes: object) -> ServerStatus:
    base = dict(name="Tongyi-MAI/Z-Image-Turbo", model="Tongyi-MAI/Z-Image-Turbo", url="http://127.0.0.1:8091",
                kind="sim", state="ready", pid=4242, uptime_s=42.0)
    return ServerStatus(**{**base, **changes})  # type: ignore[arg-type]


def test_rows_say_what_can_be_done() -> None:
    ours = row_for(_status(), gpu_mib=30512.0, log_tail="ready")
    assert ours.key == "http://127.0.0.1:8091" and ours.can_restart and ours.stop_label == "Stop"
    assert ours.to_state()["gpu_text"] == "29.8 GiB" and ours.to_state()["shown_state"] == "ready"
    attached = row_for(_status(kind="remote", owned=False, pid=None, uptime_s=None))
    assert not attached.can_restart and attached.stop_label == "Forget"
    stopping = row_for(_status(), pending="stopping")
    assert stopping.shown_state == "stopping" and not stopping.can_restart


def test_the_static_table_and_its_text_say_the_same() -> None:
    exited = _status(name="speech", model="Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", url="http://127.0.0.1:8092",
                     state="exited", uptime_s=None, cause="the process exited (code 1)", advice="see its log")
    snapshot = PanelSnapshot((row_for(_status(), gpu_mib=30512.0), row_for(exited)),
                             (GpuMemory(0, "H100 <80GB>", 30925.0, 81559.0),), time.time(), note="stopped x")
    bundle = static_bundle(snapshot)
    text = bundle["text/plain"]
    assert "Tongyi-MAI/Z-Image-Turbo: ready · http://127.0.0.1:8091 · pid 4242 · up 42 s · GPU 29.8 GiB" in text
    assert "speech: exited · Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice · http://127.0.0.1:8092" in text
    assert "cause: the process exited (code 1)" in text and "GPU 0 H100 <80GB>: 30.2 GiB of 79.6 GiB" in text
    assert "H100 &lt;80GB&gt;" in bundle["text/html"] and "<table" in bundle["text/html"]
    assert "(panel closed)" in static_bundle(snapshot, closed=True)["text/html"]
    empty = static_bundle(PanelSnapshot((), None, time.time()))
    assert "%omni_server start MODEL" in empty["text/plain"] and "%omni_server start MODEL" in empty["text/html"]


def test_panel_checks_its_settings_and_shows_an_empty_manager(tmp_path: Path) -> None:
    manager = ServerManager(registry_dir=tmp_path / "registry", nvidia_smi="no-such-nvidia-smi", register_atexit=False)
    with pytest.raises(InvalidRequestError, match="interval takes seconds above 0"):
        ServerPanel(manager, interval=0)
    with pytest.raises(InvalidRequestError, match="log_lines takes a count"):
        ServerPanel(manager, log_lines=-1)
    panel = ServerPanel(manager, live=False)
    assert repr(panel) == "ServerPanel(not shown: no snapshot yet)"
    snapshot = panel.refresh()  # nothing displayed: nothing to update, no thread started
    assert snapshot.rows == () and snapshot.gpus is None
    assert repr(panel) == "ServerPanel(not shown: no servers)"
    panel.close()
    assert panel.closed and repr(panel) == "ServerPanel(closed: no servers)"
