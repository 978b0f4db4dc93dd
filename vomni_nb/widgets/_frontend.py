"""Where a live output goes: which front end is probably there, and the one display handle it updates.

Rule 1: nothing here waits for the front end. While a cell runs, the kernel handles no message from it
        (comm replies included: ipywidgets#3468), so a "the widget rendered" reply would only arrive after
        the stream ended. The guess is made from the execute request itself.
Rule 2: the guess only chooses the live view. Whatever it says, the live output is replaced by the static
        one at the end, so a wrong guess costs liveness, never the saved record.

The guess: a kernel whose current execute request allows stdin has a person's front end attached
(JupyterLab, Notebook 7, VS Code, jupyter console), which can show widgets or else shows the bundle's text;
a request that forbids stdin comes from a headless executor (nbclient, nbconvert --execute, papermill),
which never renders widgets, so there a plain status line is updated instead. IPython without a kernel
(the terminal) gets one line at the start and the result at the end; plain Python gets nothing shown.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Literal, Protocol

__all__ = ["Mode", "Bundle", "Metadata", "Sink", "detect_mode", "ipython_sink"]

Mode = Literal["widget", "status", "plain", "none"]
Bundle = dict[str, Any]
Metadata = dict[str, Any]

_display_ids = itertools.count()


class Sink(Protocol):
    """One output: ``show`` creates it, ``update`` replaces what it shows."""

    def show(self, data: Bundle, metadata: Metadata) -> None: ...

    def update(self, data: Bundle, metadata: Metadata) -> None: ...


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:  # IPython is a dependency, but a stripped environment should still stream
        return None
    return get_ipython()


def detect_mode() -> Mode:
    """The live view this process can probably show (module docstring)."""
    shell = _shell()
    if shell is None:
        return "none"
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return "plain"
    try:
        request = kernel.get_parent()
    except Exception:  # an unusual kernel: play safe, the text line always works
        return "status"
    content = request.get("content", {}) if isinstance(request, dict) else {}
    return "widget" if content.get("allow_stdin") else "status"


class _IPythonSink:
    def __init__(self, display_id: str) -> None:
        self.display_id = display_id

    def show(self, data: Bundle, metadata: Metadata) -> None:
        from IPython.display import display

        display(data, metadata=metadata, raw=True, display_id=self.display_id)

    def update(self, data: Bundle, metadata: Metadata) -> None:
        from IPython.display import update_display

        update_display(data, metadata=metadata, raw=True, display_id=self.display_id)


class _AppendSink:
    """A terminal has no display ids: each call prints a new output."""

    def show(self, data: Bundle, metadata: Metadata) -> None:
        from IPython.display import display

        display(data, metadata=metadata, raw=True)

    update = show


class _NullSink:
    def show(self, data: Bundle, metadata: Metadata) -> None:
        pass

    update = show


def ipython_sink(mode: Mode) -> Sink:
    """The sink for ``mode``: one updatable output in a kernel, appended lines in a terminal, nothing without IPython."""
    if mode in ("widget", "status"):
        return _IPythonSink(f"vomni-speech-{os.getpid()}-{next(_display_ids)}-{os.urandom(4).hex()}")
    if mode == "plain":
        return _AppendSink()
    return _NullSink()
