"""How our errors show in IPython: a few lines, not a stack of library frames.

A misspelt argument used to print 35-90 lines of traceback, a Ctrl-C 193, burying the one line
that says what happened. IPython calls an exception's ``_render_traceback_`` when it has one
(:class:`vomni_nb.errors.VomniError` and :class:`~vomni_nb.errors.Interrupted` do), and shows the
lines it returns instead of the traceback:

    BadRequestError: 400 Bad Request from http://127.0.0.1:8091/v1/audio/speech: Invalid voice 'x'. ...
    → Check the request parameters against what this model supports.
      at cell line 3: speech = client.speak("Hello", voice="x")   (%xmode Verbose: full traceback)

Rules: the first line is the error's type and its cause, the second (when the error knows it
apart) the advice, the last the user's own line that raised, which the traceback would have shown
among the library's frames. ``%xmode Verbose`` (or ``VOMNI_TRACEBACKS=full``) brings the whole
traceback back. Nothing here raises: a rendering problem falls back to the message.
"""

from __future__ import annotations

import linecache
import os
import sys
from pathlib import Path
from types import TracebackType

__all__ = ["render", "full_wanted", "user_line"]

_PACKAGE = str(Path(__file__).resolve().parent)
_RED, _DIM, _RESET = "\x1b[31m", "\x1b[2m", "\x1b[0m"


def full_wanted() -> bool:
    """Whether the whole traceback is wanted: ``%xmode Verbose`` in IPython, or ``VOMNI_TRACEBACKS=full``."""
    if os.environ.get("VOMNI_TRACEBACKS", "").lower() == "full":
        return True
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    mode = getattr(getattr(shell, "InteractiveTB", None), "mode", "")
    return str(mode).lower() == "verbose"


# Ours, installed packages (IPython's included) and the standard library: none of it is the user's code.
_LIBRARY_ROOTS = tuple({_PACKAGE, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix})


def _library_frame(filename: str) -> bool:
    return filename.startswith(_LIBRARY_ROOTS) or "site-packages" in filename or filename.startswith("<frozen")


def user_line(traceback: TracebackType | None) -> str | None:
    """``at cell line N: <source>``: the innermost frame of the user's code (IPython's and ours skipped)."""
    found: tuple[str, int, str] | None = None
    while traceback is not None:
        frame = traceback.tb_frame
        if not _library_frame(frame.f_code.co_filename):
            found = (frame.f_code.co_filename, traceback.tb_lineno, frame.f_code.co_name)
        traceback = traceback.tb_next
    if found is None:
        return None
    filename, lineno, function = found
    source = linecache.getline(filename, lineno).strip()
    cell = "ipykernel" in filename or filename.startswith("<ipython-input")
    where = f"cell line {lineno}" if cell and function == "<module>" else f"{Path(filename).name}:{lineno} in {function}"
    return f"at {where}: {source}" if source else f"at {where}"


def render(error: BaseException) -> list[str]:
    """The few lines IPython shows for ``error`` (see the module docstring)."""
    message = str(error).strip() or type(error).__name__
    advice = str(getattr(error, "advice", "") or "").strip()
    cause = message
    if advice and message.endswith(advice):
        cause = message[: -len(advice)].rstrip()
    # A line that only repeats the advice ("Advice: ..." in a server manager's message) is said once, below.
    kept = [line for line in cause.rstrip(";:,").splitlines() if not (advice and advice in line)]
    first, *rest = kept or [message.splitlines()[0]]
    lines = [f"{_RED}{type(error).__name__}{_RESET}: {first}", *rest]
    if advice:
        lines.append(f"→ {advice}")
    tail = str(getattr(error, "log_tail", "") or "")
    if tail:  # a server that failed to start: its last log lines are the evidence
        path = getattr(error, "log_path", None)
        lines.append("--- last log lines" + (f" ({path})" if path else "") + " ---")
        lines.extend(tail.splitlines())
    try:
        where = user_line(error.__traceback__)
    except Exception:  # noqa: BLE001 - the message matters more than where it came from
        where = None
    hint = f"{_DIM}(%xmode Verbose: full traceback){_RESET}"
    lines.append(f"  {where}   {hint}" if where else f"  {hint}")
    return lines
