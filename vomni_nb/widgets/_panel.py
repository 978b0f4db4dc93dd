"""``ServerPanel()``: every server's state, model, URL, uptime, GPU memory and last log lines, with Stop and
Restart buttons, refreshed in the background.

Rule 1: nothing the panel does blocks the kernel. Refreshing (health checks, ``nvidia-smi``, log tails) runs
        on a daemon thread every ``interval`` seconds, which also keeps the panel current while a cell runs;
        Stop and Restart run on a thread of their own (a real server's restart takes minutes), and the row
        says "stopping" / "restarting" meanwhile. The thread ends when the panel is closed.
Rule 2: the panel only reads and asks the manager (``list_servers``, ``stop``, ``restart``, ``Server.logs``);
        what it shows is what the manager's books say, redacted like every log line vomni_nb shows.
Rule 3: outputs follow ``_live``: the widget where a person watches, the same snapshot as a static table
        elsewhere (nbclient, nbconvert), and that static table in place of the widget after ``close()``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vomni_nb.errors import InvalidRequestError, VomniError, redact
from vomni_nb.widgets._gpu import read_gpu_memory, server_memory_mib
from vomni_nb.widgets._live import LiveOutputs, close_widget, widget_bundle
from vomni_nb.widgets._panel_view import PanelSnapshot, log_tail, row_for, rows_text, static_bundle

if TYPE_CHECKING:
    from vomni_nb.server import Server, ServerManager

__all__ = ["ServerPanel"]


def _widget_class() -> Any:
    import anywidget
    import traitlets

    class ServerPanelWidget(anywidget.AnyWidget):  # type: ignore[misc]
        """The browser side is ``panel.js`` (its look: ``panel.css``); the whole snapshot is one small JSON trait."""

        _esm = Path(__file__).with_name("panel.js")
        _css = Path(__file__).with_name("panel.css")
        snapshot = traitlets.Dict().tag(sync=True)
        interval = traitlets.Float(2.0).tag(sync=True)

    return ServerPanelWidget


class ServerPanel:
    """A live table of the servers ``manager`` knows (``default_manager()`` when None), with Stop/Restart.

    Display it (the last line of a cell, or ``display(panel)``). ``interval``: seconds between refreshes;
    ``log_lines``: how many log lines each server shows; ``live``: True/False forces the widget or the
    static table (None guesses from the front end). ``refresh()`` takes a snapshot now; ``close()`` stops
    refreshing and leaves the last snapshot as a static table.
    """

    def __init__(self, manager: ServerManager | None = None, *, interval: float = 2.0, log_lines: int = 8,
                 live: bool | None = None) -> None:
        if not interval > 0:
            raise InvalidRequestError(f"interval takes seconds above 0; got {interval!r}")
        if log_lines < 0:
            raise InvalidRequestError(f"log_lines takes a count of 0 or more; got {log_lines!r}")
        if manager is None:
            from vomni_nb.server import default_manager

            manager = default_manager()
        self.manager = manager
        self.interval = float(interval)
        self.log_lines = int(log_lines)
        self.closed = False
        self._outputs = LiveOutputs("vomni-server-panel", live)
        self._widget: Any = None
        self._lock = threading.RLock()  # pending actions, the note, and the order of pushes
        self._pending: dict[str, str] = {}
        self._note = ""
        self._last: PanelSnapshot | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "live" if self._thread is not None else "not shown"
        rows = rows_text(self._last.rows) if self._last is not None else "no snapshot yet"
        return f"ServerPanel({state}: {rows})"

    # ---- snapshots ----------------------------------------------------------------------------

    def snapshot(self) -> PanelSnapshot:
        """Every server and GPU now (blocking: a health check per server and one ``nvidia-smi`` run)."""
        statuses = self.manager.list_servers()
        handles: dict[tuple[str, str], Server] = {(s.name, s.url): s for s in self.manager.servers}
        gpu = read_gpu_memory(self.manager.nvidia_smi)
        rows = []
        with self._lock:
            pending, note = dict(self._pending), self._note
        for status in statuses:
            handle = handles.get((status.name, status.url))
            tail = ""
            if handle is not None and self.log_lines:
                # Read more than shown: health-check lines are dropped from what is shown (_panel_view.log_tail).
                tail = redact(log_tail(handle.logs(self.log_lines * 10 + 50), self.log_lines), handle.api_key)
            key = status.url or f"pid-{status.pid}"
            rows.append(row_for(status, log_tail=tail, gpu_mib=server_memory_mib(gpu, status.pid),
                                pending=pending.get(key, "")))
        return PanelSnapshot(tuple(rows), gpu.gpus if gpu is not None else None, time.time(), note)

    def refresh(self) -> PanelSnapshot:
        """Take a snapshot and show it (in the widget, or in place of the static table)."""
        snapshot = self.snapshot()
        self._push(snapshot)
        return snapshot

    def _push(self, snapshot: PanelSnapshot) -> None:
        with self._lock:
            if self.closed:
                return
            self._last = snapshot
            if self._widget is not None:
                self._widget.snapshot = snapshot.to_state()
            else:
                self._outputs.update(static_bundle(snapshot))

    def _repush(self) -> None:
        """The last snapshot again with the current pending actions and note (no new health checks)."""
        with self._lock:
            if self._last is None:
                return
            rows = tuple(dataclasses.replace(row, pending=self._pending.get(row.key, "")) for row in self._last.rows)
            self._push(dataclasses.replace(self._last, rows=rows, note=self._note, taken_at=self._last.taken_at))

    # ---- display ------------------------------------------------------------------------------

    def _ipython_display_(self) -> None:
        if self.closed:
            snapshot = self._last or self.snapshot()
            self._outputs.show(static_bundle(snapshot, closed=True))
            return
        snapshot = self._last if self._last is not None and self._widget is not None else self.snapshot()
        self._last = snapshot
        if self._outputs.mode() == "widget" and self._ensure_widget(snapshot):
            self._outputs.show(widget_bundle(self._widget.model_id, static_bundle(snapshot)))
            self._start_refreshing()
        else:
            self._outputs.show(static_bundle(snapshot))

    def _ensure_widget(self, snapshot: PanelSnapshot) -> bool:
        if self._widget is not None:
            return True
        try:
            widget_class = _widget_class()
        except ImportError:  # anywidget missing from a hand-made environment: the static table still works
            return False
        self._widget = widget_class(snapshot=snapshot.to_state(), interval=self.interval)
        self._widget.on_msg(self._on_message)
        return True

    def _start_refreshing(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._refresh_loop, name="vomni-server-panel", daemon=True)
            self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.refresh()
            except Exception as exc:  # a refresh that fails says so in the panel and tries again later
                with self._lock:
                    self._note = f"refresh failed: {redact(str(exc))}"
                self._repush()

    # ---- buttons ------------------------------------------------------------------------------

    def _on_message(self, widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind, key = content.get("type"), str(content.get("key", ""))
        if kind == "refresh":
            self._wake.set()
        elif kind in ("stop", "restart") and key:
            with self._lock:
                if key in self._pending:
                    return  # a second click while the first runs
                self._pending[key] = "stopping" if kind == "stop" else "restarting"
                self._note = ""
            self._repush()
            threading.Thread(target=self._act, args=(kind, key), name=f"vomni-panel-{kind}", daemon=True).start()

    def _target(self, key: str) -> Server | str:
        """Our handle for a row, or (another kernel's server) the pid the manager finds it by."""
        for server in self.manager.servers:
            if server.url == key:
                return server
        row = next((row for row in (self._last.rows if self._last else ()) if row.key == key), None)
        if row is None or row.pid is None:
            raise InvalidRequestError(f"no server at {key} any more")
        return str(row.pid)

    def _act(self, kind: str, key: str) -> None:
        try:
            target = self._target(key)
            if kind == "stop":
                said = self.manager.stop(target)
            else:
                server = self.manager.restart(target, reporter=_Quiet())
                said = f"restarted {server.name} (pid {server.pid})"
        except (VomniError, OSError) as exc:
            said = f"{kind} failed: {redact(str(exc))}"
        with self._lock:
            self._pending.pop(key, None)
            self._note = said
        self._wake.set()

    # ---- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop refreshing and leave the last snapshot, as a static table, in place of every display."""
        if self.closed:
            return
        self._stopping.set()
        self._wake.set()
        with self._lock:
            last = self._last
            self.closed = True
            if last is not None:
                self._outputs.update(static_bundle(last, closed=True))
            if self._widget is not None:
                close_widget(self._widget)
                self._widget = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 5)


class _Quiet:
    """A restart from the panel reports in the panel's row, not through the magic's status line."""

    def phase(self, model: str, phase: str, elapsed: float) -> None:
        pass

    def done(self, server: Server, *, reused: bool, note: str = "") -> None:
        pass

    def failed(self, model: str, error: BaseException, elapsed: float) -> None:
        pass
