"""Progress of a long job (a video job): the callback ``video()`` takes, and its default, a live status line.

A :data:`ProgressCallback` is called with the job record each time it is polled: the server's
statuses ``queued`` -> ``in_progress`` -> ``completed`` | ``failed``, and, as a last call when the
client stops following a job that has not finished, one of two of ours: ``cancelled`` (Ctrl-C
cancelled it) or ``left_running`` (``timeout=`` ran out; ``client.wait_video(job_id)`` resumes).

``on_progress="auto"`` (the default) is :class:`JobStatusLine` inside a Jupyter kernel, one output
updated in place (``◔ video_gen_…: in progress 40% … 12.0 s``) that ends as a static summary, and
nothing anywhere else (plain Python, scripts, the terminal). ``None`` shows nothing; any callable
gets the job records instead. Rules: the status text is a pure function of the job and the time
(:func:`status_text`); showing it goes through :class:`vomni_nb.display.LiveLine`, imported only when
a line is shown, so the client layers never load IPython.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

__all__ = ["ProgressCallback", "OnProgress", "FINAL_STATUSES", "status_text", "JobStatusLine", "resolve",
           "in_kernel"]

ProgressCallback = Callable[[Mapping[str, Any]], None]
OnProgress = Union[ProgressCallback, Literal["auto"], None]

# Statuses after which a job's line is final: the server's two, and the two the client adds.
FINAL_STATUSES = ("completed", "failed", "cancelled", "left_running")
_SYMBOLS = {"completed": ("✓", "#2e7d32"), "failed": ("✗", "#c62828"), "cancelled": ("✗", "#c62828"),
            "left_running": ("…", "#b58900")}


def _reason(job: Mapping[str, Any]) -> str:
    error = job.get("error")
    message = error.get("message") if isinstance(error, Mapping) else None
    return f" ({str(message).rstrip('.')})" if message else ""


def status_text(job: Mapping[str, Any], elapsed: float) -> str:
    """One line for a job's state: ``video_gen_…: in progress 40% … 12.0 s``, ``…: done in 31.2 s (832x480, 81 frames)``."""
    job_id, status = str(job.get("id", "job")), str(job.get("status", "?"))
    if status == "completed":
        facts = [str(job["size"])] if job.get("size") else []
        facts += [f"{job['num_frames']} frames"] if job.get("num_frames") else []
        return f"{job_id}: done in {elapsed:.1f} s" + (f" ({', '.join(facts)})" if facts else "")
    if status == "failed":
        return f"{job_id}: failed after {elapsed:.1f} s{_reason(job)}"
    if status == "cancelled":
        return f"{job_id}: cancelled after {elapsed:.1f} s (interrupted)"
    if status == "left_running":
        waited = job.get("timeout_s")  # a timeout ran out: its value, as JobTimeoutError says it (else: interrupted)
        took = f"{waited:g} s" if isinstance(waited, (int, float)) else f"{elapsed:.1f} s"
        return f"{job_id}: still running after {took}; resume with client.wait_video({job_id!r})"
    progress = job.get("progress")
    percent = f" {progress}%" if isinstance(progress, (int, float)) and 0 < progress < 100 else ""
    return f"{job_id}: {status.replace('_', ' ')}{percent} … {elapsed:.1f} s"


class JobStatusLine:
    """A ProgressCallback showing one live line per job, throttled, ending as a static summary.

    ``line`` is anything with ``update(text, html)`` and ``finish(text, html)``
    (default: a :class:`vomni_nb.display.LiveLine` in the notebook); ``clock`` measures the elapsed time.
    """

    def __init__(self, line: Any = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._line = line
        self._clock = clock
        self._started: float | None = None

    def __call__(self, job: Mapping[str, Any]) -> None:
        now = self._clock()
        if self._started is None:
            self._started = now
        if self._line is None:
            from vomni_nb.display import LiveLine

            self._line = LiveLine(0.25)
        status = str(job.get("status", ""))
        text = status_text(job, now - self._started)
        symbol, colour = _SYMBOLS.get(status, ("◔", "#b58900"))
        body = (f"<div style='font-family:monospace;padding:2px 0'><span style='color:{colour}'>{symbol}</span> "
                f"{html.escape(text)}</div>")
        if status in FINAL_STATUSES:
            self._line.finish(f"{symbol} {text}", body)
        else:
            self._line.update(f"{symbol} {text}", body)


def in_kernel() -> bool:
    """Whether this is a Jupyter kernel (found without importing IPython: it is loaded there already)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    return getattr(shell, "kernel", None) is not None


def resolve(on_progress: OnProgress) -> ProgressCallback | None:
    """The callback to call: ``"auto"`` is a JobStatusLine in a kernel and nothing elsewhere."""
    if on_progress == "auto":
        return JobStatusLine() if in_kernel() else None
    if on_progress is not None and not callable(on_progress):
        from vomni_nb.errors import InvalidRequestError

        raise InvalidRequestError(f"on_progress must be a callable, 'auto' or None; got {on_progress!r}.")
    return on_progress
