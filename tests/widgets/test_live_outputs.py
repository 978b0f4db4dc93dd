"""Which view a long-lived widget gets where it is displayed, in this process (an IPython shell captures the
outputs): ``live=False`` forces the static table and summary, and a kernel that cannot say which request
is running still gets an output (the static one: the text line always works)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from vomni_nb.server import ServerManager
from vomni_nb.widgets import ServerPanel, Studio

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServerManager]:
    InteractiveShell.instance()
    manager = ServerManager(registry_dir=tmp_path / "registry", nvidia_smi="no-such-nvidia-smi", register_atexit=False)
    yield manager
    manager.shutdown(grace=2.0)


def test_live_false_shows_the_static_views(manager: ServerManager) -> None:
    panel = ServerPanel(manager, live=False)
    studio = Studio("a moth", manager=manager, store=False, live=False)
    with capture_output() as shown:
        panel._ipython_display_()
        studio._ipython_display_()
    table, summary = (output.data for output in shown.outputs)
    assert WIDGET_MIME not in table and "<table" in table["text/html"] and panel._thread is None
    assert WIDGET_MIME not in summary and summary["text/plain"].startswith("Studio (no widget front end here)")
    panel.close()
    studio.close()


class UnusualKernel:
    """A kernel whose request cannot be read: ipykernel's ``get_parent`` never fails, so only a stand-in
    can show that vomni_nb then still displays (the static view) instead of raising."""

    def get_parent(self) -> Any:
        raise RuntimeError("no parent here")


def test_a_kernel_that_cannot_name_its_request_gets_the_static_view(manager: ServerManager,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(InteractiveShell.instance(), "kernel", UnusualKernel(), raising=False)
    panel = ServerPanel(manager)  # live=None: the view is guessed from the request, which cannot be read
    with capture_output() as shown:
        panel._ipython_display_()
    (table,) = shown.outputs
    assert WIDGET_MIME not in table.data and "<table" in table.data["text/html"]
    assert panel._outputs.parent is None  # pinned outputs would go to the running cell
    panel.close()
