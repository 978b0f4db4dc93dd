"""The ServerPanel's messages in a real kernel (jupyter_client), as a front end sends and receives them, with
two real vomni-sim servers the kernel starts through its manager and the stand-in nvidia-smi.

The whole snapshot is one small JSON trait, refreshed in the background while the kernel is idle and while
a cell runs; Restart and Stop (on a subshell, as JupyterLab sends them) show "restarting" / "stopping" at once
and then what the manager did; closing ends the refresh thread and leaves no comm open.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.comms import drain_until, new_subshell, opened_widget, send_custom, state_of
from tests.support.kernels import KernelSession
from tests.support.sims import IMAGE_MODEL, STAND_IN, TTS_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(180)]


def _setup(tmp: Path) -> str:
    return (
        "import os\n"
        "from vomni_nb import ServerPanel\n"
        "from vomni_nb.server import ServerManager\n"
        f"m = ServerManager(registry_dir={str(tmp / 'registry')!r}, log_dir={str(tmp / 'logs')!r}, "
        f"nvidia_smi={str(STAND_IN / 'nvidia-smi')!r})\n"
        f"image = m.start({IMAGE_MODEL!r}, sim=True)\n"
        f"speech = m.start({TTS_MODEL!r}, sim=True)\n"
        "os.environ['STANDIN_GPU_APPS'] = f'{image.pid}:30512'"
    )


def _rows(msg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    snapshot = state_of(msg).get("snapshot")
    return {row["name"]: row for row in snapshot["rows"]} if snapshot else {}


def test_panel_over_the_comm_refreshes_restarts_and_stops(tmp_path: Path) -> None:
    with closing(KernelSession()) as kernel:
        reply, _ = kernel.run(_setup(tmp_path), timeout=90)
        assert reply["status"] == "ok", reply
        reply, messages = kernel.run("panel = ServerPanel(m, interval=0.3)\npanel", allow_stdin=True)
        opened = opened_widget(messages, "ServerPanelWidget")
        comm_id, snapshot = opened["content"]["comm_id"], opened["content"]["data"]["state"]["snapshot"]
        rows = {row["name"]: row for row in snapshot["rows"]}
        assert set(rows) == {IMAGE_MODEL, TTS_MODEL} and {row["state"] for row in rows.values()} == {"ready"}
        assert rows[IMAGE_MODEL]["gpu_mib"] == 30512 and rows[TTS_MODEL]["gpu_mib"] is None
        assert [gpu["total_mib"] for gpu in snapshot["gpus"]] == [81559, 81559]
        assert "Application startup complete." in rows[IMAGE_MODEL]["log_tail"]
        assert len(json.dumps(snapshot)) < 20_000 and not opened["buffers"]

        # Refreshed in the background, also while a cell runs.
        busy = kernel.send("import time; time.sleep(1.5)", allow_stdin=True)
        seen = drain_until(kernel, lambda m: m["parent_header"].get("msg_id") == busy
                           and m["msg_type"] == "status" and m["content"]["execution_state"] == "idle")
        assert len([m for m in seen if _rows(m)]) >= 3
        assert "GET /health" not in _rows([m for m in seen if _rows(m)][-1])[IMAGE_MODEL]["log_tail"]

        # Restart (on a subshell): "restarting" at once, then ready again with a new process.
        subshell = new_subshell(kernel)
        old_pid = rows[TTS_MODEL]["pid"]
        send_custom(kernel, comm_id, {"type": "restart", "key": rows[TTS_MODEL]["key"]}, subshell=subshell)
        seen = drain_until(kernel, lambda m: _rows(m).get(TTS_MODEL, {}).get("pending") == "restarting", timeout=10)
        seen = drain_until(kernel, lambda m: bool(_rows(m)) and _rows(m)[TTS_MODEL]["pending"] == ""
                           and _rows(m)[TTS_MODEL]["state"] == "ready", timeout=60)
        assert _rows(seen[-1])[TTS_MODEL]["pid"] != old_pid
        assert state_of(seen[-1])["snapshot"]["note"].startswith(f"restarted {TTS_MODEL}")

        # Stop: "stopping", then gone from the panel, from the manager's books, and from the process table.
        pid = _rows(seen[-1])[TTS_MODEL]["pid"]
        send_custom(kernel, comm_id, {"type": "stop", "key": rows[TTS_MODEL]["key"]}, subshell=subshell)
        drain_until(kernel, lambda m: _rows(m).get(TTS_MODEL, {}).get("pending") == "stopping", timeout=10)
        seen = drain_until(kernel, lambda m: bool(_rows(m)) and TTS_MODEL not in _rows(m)
                           and state_of(m)["snapshot"]["note"].startswith("stopped"), timeout=30)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        reply, messages = kernel.run("print(sorted(s.name for s in m.servers))")
        assert "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream").strip() == str([IMAGE_MODEL])

        # Closing: the thread ends, the widget is replaced by the static table, and no comm stays open.
        reply, messages = kernel.run("panel.close()\nimport comm\n"
                                     "print(panel._thread.is_alive(), len(comm.get_comm_manager().comms))")
        assert "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream").split() == ["False", "0"]
        (final,) = [m for m in messages if m["msg_type"] == "update_display_data"]
        assert "(panel closed)" in final["content"]["data"]["text/html"]
        kernel.run("m.shutdown()")
