"""The outputs of a long-lived widget (the ServerPanel, the Studio): live where a person watches, static
elsewhere, static at the end, and static outputs added below it on request (a pinned result).

Rule 1: each display is one output with its own display id. The view is chosen per display by
        ``_frontend.detect_mode`` (the execute request allows stdin: a person's front end) and never waits
        for the front end: a widget bundle also carries the static ``text/html`` and ``text/plain``, and a
        headless run (nbclient) gets only the static bundle, so it never saves "Error displaying widget".
Rule 2: ``close`` replaces every display by the static bundle before the widget's comm closes, so a notebook
        saved afterwards holds no widget that no longer exists.
Rule 3: a comm callback runs under the comm message, which no output area listens to; ``display_below``
        sends its output under the execute request that displayed the widget instead, so JupyterLab and
        Notebook 7 (which keep listening to a cell's request until it runs again) append it to that cell.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from vomni_nb.widgets._frontend import Bundle, Metadata, Mode, detect_mode

__all__ = ["WIDGET_MIME", "LiveOutputs", "widget_bundle", "close_widget"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_ids = itertools.count()


def widget_bundle(model_id: str, static: Bundle) -> Bundle:
    """The static bundle plus the widget view: front ends with a widget manager show the widget."""
    return {**static, WIDGET_MIME: {"version_major": 2, "version_minor": 1, "model_id": model_id}}


def _kernel() -> tuple[Any, Any]:
    """The IPython shell and its kernel (None, None outside IPython; shell, None in a terminal)."""
    from IPython import get_ipython

    shell = get_ipython()
    return shell, getattr(shell, "kernel", None)


def _in_a_cell(found: Any) -> bool:
    try:
        request = found[1].get_parent()
    except Exception:  # an unusual kernel: treat it as code in a cell
        return True
    return bool(request) and request.get("header", {}).get("msg_type") == "execute_request"


class LiveOutputs:
    """Where one widget object is shown: its display ids and the request that first displayed it."""

    def __init__(self, prefix: str, live: bool | None = None) -> None:
        self.prefix = prefix
        self.live = live
        self.display_ids: list[str] = []
        self.parent: dict[str, Any] | None = None  # the execute request of the first display (Rule 3)

    def mode(self) -> Mode:
        """The view for a display made now: ``live`` forces it, else the front end is guessed."""
        if self.live is not None:
            return "widget" if self.live else "status"
        return detect_mode()

    def show(self, data: Bundle, metadata: Metadata | None = None) -> None:
        """Display ``data`` as a new output that ``update`` and ``close`` can replace later."""
        from IPython.display import display

        display_id = f"{self.prefix}-{os.getpid()}-{next(_ids)}-{os.urandom(3).hex()}"
        self.display_ids.append(display_id)
        found = _kernel()
        if self.parent is None and found[1] is not None:
            try:
                self.parent = found[1].get_parent()
            except Exception:  # an unusual kernel: pinned outputs go to the calling cell instead
                self.parent = None
        display(data, metadata=metadata or {}, raw=True, display_id=display_id)

    def update(self, data: Bundle, metadata: Metadata | None = None) -> None:
        """Replace every display of this object by ``data``."""
        if not self.display_ids:
            return
        from IPython.display import update_display

        for display_id in self.display_ids:
            update_display(data, metadata=metadata or {}, raw=True, display_id=display_id)

    def display_below(self, data: Bundle, metadata: Metadata | None = None) -> None:
        """A new static output: in the running cell when code calls it, else (a button) in the cell that
        displayed the widget (Rule 3)."""
        from IPython.display import display

        found = _kernel()
        publisher = getattr(found[0], "display_pub", None)
        setter = getattr(publisher, "set_thread_parent", None)
        if self.parent is None or setter is None or _in_a_cell(found):
            display(data, metadata=metadata or {}, raw=True)
            return
        token = setter(self.parent)
        try:
            display(data, metadata=metadata or {}, raw=True)
        finally:
            publisher.reset_thread_parent(token)  # type: ignore[union-attr]


def close_widget(widget: Any) -> None:
    """Close an anywidget's comm and the layout model every DOMWidget opens beside it."""
    layout = widget.layout  # every DOMWidget has one, and an AnyWidget is a DOMWidget
    widget.close()
    layout.close()
