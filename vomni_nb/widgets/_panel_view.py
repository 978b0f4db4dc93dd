"""What the server panel shows, as data: one ``ServerRow`` per server, and the static bundle of a snapshot.

Pure: rows are built from ``ServerStatus`` snapshots, log tails and GPU figures that the caller read; the
widget gets them as JSON (``PanelSnapshot.to_state``), and front ends without widgets get the same rows as
an HTML table with a text twin (``static_bundle``). Log lines are redacted before they get here.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import re
from collections.abc import Sequence
from typing import Any

from vomni_nb import _advice
from vomni_nb.widgets._gpu import GpuMemory

__all__ = ["ServerRow", "PanelSnapshot", "row_for", "static_bundle", "human_duration", "memory_text",
           "rows_text", "log_tail"]

STATE_COLOURS = {"ready": "#2e7d32", "unhealthy": "#ef6c00", "exited": "#c62828", "unreachable": "#757575",
                 "stopping": "#6a1b9a", "restarting": "#1565c0"}


# An access-log line of a health check (uvicorn's format, vLLM's too): the panel's own refreshes make one
# every few seconds, and they would push every other line out of the tail.
_HEALTH_CHECK = re.compile(r'"GET /health HTTP/[0-9.]+" 200')


def log_tail(text: str, n: int) -> str:
    """The last ``n`` lines of a log without the health checks' access lines."""
    lines = [line for line in text.splitlines() if line.strip() and not _HEALTH_CHECK.search(line)]
    return "\n".join(lines[-n:]) if n > 0 else ""


def human_duration(seconds: float | None) -> str:
    """``42 s``, ``7 min``, ``3 h 05 min``; an empty string when unknown."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(int(seconds // 60), 60)
    return f"{hours} h {minutes:02d} min"


def memory_text(mib: float | None) -> str:
    """GPU memory for people: ``29.8 GiB``, ``512 MiB``; empty when unknown."""
    if mib is None:
        return ""
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


@dataclasses.dataclass(frozen=True)
class ServerRow:
    """One server as the panel shows it. ``key`` names it in button messages (its URL); ``pending`` is
    "stopping" or "restarting" while the panel's own action runs, and then stands in for ``state``."""

    key: str
    name: str
    model: str
    url: str
    kind: str
    state: str
    pid: int | None = None
    uptime_s: float | None = None
    keep: bool = False
    owned: bool = True
    attached: bool = False
    cause: str = ""
    advice: str = ""
    gpu_mib: float | None = None
    log_tail: str = ""
    pending: str = ""

    @property
    def shown_state(self) -> str:
        return self.pending or self.state

    @property
    def can_restart(self) -> bool:
        """Only a server this kernel launched can be launched again the same way."""
        return self.owned and not self.attached and not self.pending

    @property
    def stop_label(self) -> str:
        return "Forget" if self.attached else "Stop"

    def to_state(self) -> dict[str, Any]:
        state = dataclasses.asdict(self)
        state.update(shown_state=self.shown_state, can_restart=self.can_restart, stop_label=self.stop_label,
                     gpu_text=memory_text(self.gpu_mib))
        return state


def row_for(status: Any, *, log_tail: str = "", gpu_mib: float | None = None, pending: str = "") -> ServerRow:
    """The row of one ``ServerStatus`` (ours, attached, or another kernel's from the registry)."""
    return ServerRow(
        key=status.url or f"pid-{status.pid}", name=status.name, model=status.model, url=status.url,
        kind=status.kind, state=status.state, pid=status.pid, uptime_s=status.uptime_s, keep=status.keep,
        owned=status.owned, attached=status.kind == "remote", cause=status.cause, advice=status.advice,
        gpu_mib=gpu_mib, log_tail=log_tail, pending=pending,
    )


@dataclasses.dataclass(frozen=True)
class PanelSnapshot:
    """Every server and GPU at one moment (``taken_at``: seconds since the epoch)."""

    rows: tuple[ServerRow, ...]
    gpus: tuple[GpuMemory, ...] | None
    taken_at: float
    note: str = ""

    def to_state(self) -> dict[str, Any]:
        gpus = None if self.gpus is None else [dataclasses.asdict(gpu) for gpu in self.gpus]
        return {"rows": [row.to_state() for row in self.rows], "gpus": gpus, "taken_at": self.taken_at,
                "note": self.note, "empty_hint": f"No servers yet: {_advice.START_ONE}."}


def _text_lines(snapshot: PanelSnapshot) -> list[str]:
    when = datetime.datetime.fromtimestamp(snapshot.taken_at).strftime("%H:%M:%S")
    lines = [f"vomni_nb servers at {when}: {len(snapshot.rows) or 'none'}"]
    for row in snapshot.rows:
        parts = [f"{row.name}: {row.shown_state}", row.url]
        if row.name != row.model:
            parts.insert(1, row.model)
        parts += [p for p in (f"pid {row.pid}" if row.pid else "", f"up {human_duration(row.uptime_s)}"
                              if row.uptime_s is not None and row.state == "ready" else "",
                              f"GPU {memory_text(row.gpu_mib)}" if row.gpu_mib is not None else "") if p]
        lines.append("  " + " · ".join(parts))
        if row.cause:
            lines.append(f"    cause: {row.cause}")
    if not snapshot.rows:
        lines.append(f"  {_advice.START_ONE}")
    for gpu in snapshot.gpus or ():
        lines.append(f"  GPU {gpu.index} {gpu.name}: {memory_text(gpu.used_mib)} of {memory_text(gpu.total_mib)}")
    if snapshot.note:
        lines.append(f"  {snapshot.note}")
    return lines


def _html_row(row: ServerRow) -> str:
    colour = STATE_COLOURS.get(row.shown_state, "#757575")
    e = html.escape
    model = "" if row.model == row.name else f"<div style='opacity:.7'>{e(row.model)}</div>"
    uptime = human_duration(row.uptime_s) if row.state == "ready" else ""
    cause = f"<div style='color:{colour}'>{e(row.cause)}</div>" if row.cause else ""
    cells = [
        f"<span style='color:{colour};font-weight:600'>● {e(row.shown_state)}</span>",
        f"<b>{e(row.name)}</b>{model}{cause}",
        f"<code>{e(row.url)}</code>",
        e(uptime),
        e(str(row.pid or "")),
        e(memory_text(row.gpu_mib)),
    ]
    return "<tr>" + "".join(f"<td style='padding:3px 10px;vertical-align:top;text-align:left'>{cell}</td>"
                            for cell in cells) + "</tr>"


def static_bundle(snapshot: PanelSnapshot, *, closed: bool = False) -> dict[str, str]:
    """The snapshot as ``text/plain`` and an HTML table: what a saved notebook or nbconvert keeps."""
    text = "\n".join(_text_lines(snapshot))
    when = datetime.datetime.fromtimestamp(snapshot.taken_at).strftime("%H:%M:%S")
    heading = "Servers" + (" (panel closed)" if closed else "") + f" at {when}"
    head = "".join(f"<th style='padding:3px 10px;text-align:left'>{h}</th>"
                   for h in ("state", "server", "URL", "uptime", "pid", "GPU memory"))
    body = "".join(_html_row(row) for row in snapshot.rows) or (
        f"<tr><td colspan='6' style='padding:3px 10px'>{html.escape(_advice.START_ONE)}</td></tr>")
    gpus = "".join(f"<div>GPU {gpu.index} {html.escape(gpu.name)}: {memory_text(gpu.used_mib)} of "
                   f"{memory_text(gpu.total_mib)}</div>" for gpu in snapshot.gpus or ())
    note = f"<div style='opacity:.8'>{html.escape(snapshot.note)}</div>" if snapshot.note else ""
    table = (f"<div class='vomni-server-panel-static' style='font-family:var(--jp-ui-font-family,sans-serif);"
             f"font-size:13px'><div style='font-weight:600;margin-bottom:4px'>{heading}</div>"
             f"<table style='border-collapse:collapse'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
             f"{gpus}{note}</div>")
    return {"text/plain": text, "text/html": table}


def rows_text(rows: Sequence[ServerRow]) -> str:
    """One line per server (the panel's repr)."""
    return "; ".join(f"{row.name}: {row.shown_state}" for row in rows) or "no servers"
