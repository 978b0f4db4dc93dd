"""The ServerPanel's buttons pressed at the wrong moment and its faults, in this process: an IPython shell
captures what the panel displays, the widget is a real anywidget whose messages arrive as a front end's
comm message would (``Widget._handle_msg``), and the servers are real vomni-sim processes the manager starts.

A click with no target, a second click while the first runs, a Stop of a server that is gone, a Restart
that cannot launch, a refresh that fails: each ends as a note in the panel, never as a traceback in a
thread no one sees. Closing twice, or refreshing after closing, shows nothing new.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from vomni_nb.server import ServerManager, set_default_manager
from vomni_nb.widgets import ServerPanel
from tests.support.kernels import REPO
from tests.support.sims import IMAGE_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def wait_for(condition: Callable[[], Any], timeout: float = 60) -> Any:
    """Poll until ``condition()`` is truthy (the panel's buttons act on threads of their own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s")


def click(widget: Any, content: Any) -> None:
    """A message from the widget's front end (``model.send(content)``), as the comm delivers it."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServerManager]:
    InteractiveShell.instance()  # display() needs a shell; capture_output() records what it publishes
    manager = ServerManager(registry_dir=tmp_path / "registry", log_dir=tmp_path / "logs",
                            nvidia_smi="no-such-nvidia-smi", register_atexit=False)
    yield manager
    manager.shutdown(grace=2.0)


def _note(panel: ServerPanel) -> str:
    return str(panel._widget.snapshot["note"])


def test_clicks_at_the_wrong_moment_and_failed_actions_end_as_notes(manager: ServerManager, tmp_path: Path) -> None:
    server = manager.start(IMAGE_MODEL, sim=True)
    panel = ServerPanel(manager, interval=3600, live=True)  # refreshed only when asked: each step is ours
    with capture_output() as shown:
        panel._ipython_display_()
        panel._ipython_display_()  # displayed twice: one widget, one refresh thread, two views of it
    first, second = (output.data for output in shown.outputs)
    assert first[WIDGET_MIME]["model_id"] == second[WIDGET_MIME]["model_id"] == panel._widget.model_id
    threads = [t for t in threading.enumerate() if t.name == "vomni-server-panel"]
    assert threads == [panel._thread]
    widget = panel._widget

    # Messages that ask for nothing change nothing: not a dict, a Stop without a row, an unknown kind.
    for content in ("stop", {"type": "stop"}, {"type": "explode", "key": server.url}):
        click(widget, content)
    assert panel._pending == {} and _note(panel) == "" and manager.servers == [server]

    # Refresh: a new snapshot now, not after the hour-long interval.
    taken = widget.snapshot["taken_at"]
    click(widget, {"type": "refresh"})
    wait_for(lambda: widget.snapshot["taken_at"] > taken)

    # A Stop clicked while the row restarts is ignored: the server comes back, restarted, not stopped.
    old_pid = server.pid
    click(widget, {"type": "restart", "key": server.url})
    click(widget, {"type": "stop", "key": server.url})
    assert widget.snapshot["rows"][0]["pending"] == "restarting"
    wait_for(lambda: _note(panel).startswith("restarted"))
    assert manager.servers == [server] and server.pid != old_pid
    assert _note(panel) == f"restarted {server.name} (pid {server.pid})"

    # A Stop for a row that is gone says so.
    click(widget, {"type": "stop", "key": "http://127.0.0.1:9"})
    assert wait_for(lambda: _note(panel).startswith("stop failed") and _note(panel)) == \
        "stop failed: no server at http://127.0.0.1:9 any more"

    # A Restart that cannot launch (its log folder became a file) says why, and the server is gone.
    logs = tmp_path / "logs"
    shutil.move(logs, tmp_path / "logs-moved")
    logs.write_text("not a folder")
    click(widget, {"type": "restart", "key": server.url})
    note = wait_for(lambda: _note(panel).startswith("restart failed") and _note(panel))
    assert note == f"restart failed: {IMAGE_MODEL} could not be launched: [Errno 17] File exists: '{logs}'"
    assert manager.servers == []

    # A refresh that fails (the registry folder became a file) leaves a note and the last rows.
    shutil.rmtree(tmp_path / "registry")
    (tmp_path / "registry").write_text("not a folder")
    click(widget, {"type": "refresh"})
    assert wait_for(lambda: _note(panel).startswith("refresh failed") and _note(panel)) == \
        f"refresh failed: [Errno 17] File exists: '{tmp_path / 'registry'}'"

    # Closed: both views become the static table; a second close and a late refresh show nothing new.
    (tmp_path / "registry").unlink()
    with capture_output() as closing:
        panel.close()
        panel.close()
        panel.refresh()
    assert len(closing.outputs) == 2 and all(WIDGET_MIME not in o.data for o in closing.outputs)
    assert all("(panel closed)" in o.data["text/html"] for o in closing.outputs)
    assert not panel._thread.is_alive()
    with capture_output() as again:
        panel._ipython_display_()  # a closed panel displayed again: its last table, marked closed
    (table,) = again.outputs
    assert "(panel closed)" in table.data["text/html"] and "refresh failed" in table.data["text/plain"]


def test_a_server_of_another_kernel_is_stopped_by_its_pid(manager: ServerManager, tmp_path: Path) -> None:
    # Another kernel keeps a server (keep=True outlives the process that started it) in the shared registry.
    code = (f"from vomni_nb.server import ServerManager\n"
            f"m = ServerManager(registry_dir={str(tmp_path / 'registry')!r}, log_dir={str(tmp_path / 'other')!r})\n"
            f"print(m.start({IMAGE_MODEL!r}, sim=True, keep=True).pid)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    pid = int(out.stdout.split()[-1])
    try:
        _stop_it_from_the_panel(manager, pid)
    finally:  # a kept server outlives its kernel: never leave one behind when the test fails
        if psutil.pid_exists(pid):
            psutil.Process(pid).kill()


def _stop_it_from_the_panel(manager: ServerManager, pid: int) -> None:
    with set_default_manager(manager):
        panel = ServerPanel(interval=3600, live=True)  # no manager given: the kernel's default one
    assert panel.manager is manager
    with capture_output():
        panel._ipython_display_()
    (row,) = panel._widget.snapshot["rows"]
    assert row["pid"] == pid and not row["owned"] and manager.servers == []
    click(panel._widget, {"type": "stop", "key": row["key"]})
    wait_for(lambda: panel._widget.snapshot["rows"] == [])
    assert "stopped" in _note(panel) and str(pid) in _note(panel)
    with capture_output():
        panel.close()


def test_without_anywidget_the_panel_is_a_static_table(manager: ServerManager,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    panel = ServerPanel(manager, live=True)
    with capture_output() as shown:
        panel.close()  # never displayed, no snapshot: nothing to replace
    assert shown.outputs == [] and repr(panel) == "ServerPanel(closed: no snapshot yet)"

    # A hand-made environment without anywidget (a missing module, which no installed part can stand for).
    monkeypatch.setitem(sys.modules, "anywidget", None)
    panel = ServerPanel(manager, live=True)
    with capture_output() as shown:
        panel._ipython_display_()
    (table,) = shown.outputs
    assert WIDGET_MIME not in table.data and "%omni_server start MODEL" in table.data["text/plain"]
    assert panel._thread is None and repr(panel) == "ServerPanel(not shown: no servers)"
    panel.close()
