"""Helpers for browser tests that drive single cells of an open JupyterLab notebook (through ``Quiet``, so
no user gesture is granted), and for writing the notebooks they open.

Plain functions, not fixtures (those live in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import nbformat

from tests.support.lab import Quiet

__all__ = ["write_notebook", "run_cell", "wait_cell_done", "cell_text", "save_and_read", "wait_file_text", "js",
           "open_notebook", "click"]

_PANEL = "window.jupyterapp.shell.currentWidget"


def write_notebook(path: Path, cells: list[str]) -> str:
    """A notebook of code cells at ``path``; returns its name (relative to the server root)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path.name


def run_cell(quiet: Quiet, index: int) -> None:
    """Run one cell (as Shift+Enter would, without moving on), whatever the kernel is doing."""
    quiet.eval(f"""(() => {{
        const panel = {_PANEL};
        panel.content.activeCellIndex = {index};
        window.jupyterapp.commands.execute('notebook:run-cell');
    }})()""")


def wait_cell_done(quiet: Quiet, index: int, timeout: float = 120.0) -> None:
    """Wait until cell ``index`` has an execution count and the kernel is idle again."""
    quiet.wait(f"(() => {{ const cell = {_PANEL}.content.widgets[{index}];"
               " const prompt = cell.node.querySelector('.jp-InputPrompt');"
               " return cell.model.executionCount !== null && !!prompt && prompt.textContent.indexOf('*') < 0;"
               " })()", timeout=timeout)


def cell_text(quiet: Quiet, index: int) -> str:
    """The visible text of cell ``index``'s outputs."""
    value = quiet.eval(f"{_PANEL}.content.widgets[{index}].outputArea.node.innerText")
    return str(value or "")


def save_and_read(quiet: Quiet, path: Path) -> Any:
    """Save the open notebook and read it back from disk (nbformat joins multi-line strings)."""
    quiet.eval("window.jupyterapp.commands.execute('docmanager:save')")
    quiet.wait(f"!{_PANEL}.context.model.dirty", timeout=30)
    return nbformat.read(path, as_version=4)


def wait_file_text(path: Path, text: str, timeout: float = 10.0) -> str:
    """Wait until ``text`` appears in the file at ``path``; return the file's text."""
    deadline = time.monotonic() + timeout
    while True:
        found = path.read_text(errors="replace") if path.exists() else ""
        if text in found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in {path} after {timeout}s:\n{found[-2000:]}")
        time.sleep(0.05)


def js(value: Any) -> str:
    """A Python value as a JS literal."""
    return json.dumps(value)


def open_notebook(quiet: Quiet, base: str, notebook: str) -> None:
    """Open ``notebook`` in JupyterLab and wait until its kernel is ready (runs nothing)."""
    from tests.support.lab import TOKEN

    quiet.page.goto(f"{base}/lab/tree/{notebook}?token={TOKEN}")
    quiet.wait(f"!!(window.jupyterapp && {_PANEL} && {_PANEL}.sessionContext)", timeout=90)
    quiet.eval(f"(async () => {{ await {_PANEL}.context.ready; await {_PANEL}.sessionContext.ready; }})()")
    quiet.wait(f"{_PANEL}.sessionContext.session?.kernel?.status === 'idle'", timeout=90)


def click(quiet: Quiet, selector: str) -> None:
    """Scroll the element into the middle of the view, then press it with the mouse (``Quiet.click``)."""
    quiet.eval(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}})")
    time.sleep(0.2)
    quiet.click(selector)
