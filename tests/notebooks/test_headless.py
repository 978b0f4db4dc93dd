"""The teaching notebooks: stored clean, each opening with what it teaches and needs, and each run headless,
top to bottom, in a fresh kernel with nothing else running (it starts the simulators it needs), as
"Run All" in a fresh JupyterLab would. `make demo HEADLESS=1` runs the quickstart the same way
(tests/notebooks/test_demo.py); the browser runs it from the page (tests/notebooks/test_browser_run_all.py).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from PIL import Image

from tests.support.notebooks import NOTEBOOKS, TEACHING_ORDER, errors, isolate, outputs, workspace
from tools.demo import run_headless

# ---- what is stored -------------------------------------------------------------------------------


def test_the_notebooks_are_the_teaching_order() -> None:
    assert [path.stem for path in NOTEBOOKS] == TEACHING_ORDER


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_is_stored_with_outputs_cleared(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    dirty = [index for index, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert dirty == [], f"cells {dirty} of {notebook.name} keep outputs: clear them before committing"
    assert "widgets" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_opens_with_what_it_shows_and_needs(notebook: Path) -> None:
    first = nbformat.read(notebook, as_version=4).cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "**What you need:**" in first.source
    # Without a GPU the reader must know the outputs are simulated, before the first one appears.
    assert "vomni-sim" in first.source and "simulated" in first.source


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebooks_named_in_the_prose_exist(notebook: Path) -> None:
    text = "\n".join(cell.source for cell in nbformat.read(notebook, as_version=4).cells)
    named = set(re.findall(r"\b(0\d_[a-z_]+[a-z])\b", text))
    assert named <= set(TEACHING_ORDER), named - set(TEACHING_ORDER)


# ---- what running them shows ----------------------------------------------------------------------


def _pictures(outs: list[Any]) -> list[bytes]:
    """Every picture the outputs show: image/png outputs, and JPEG previews inside HTML (large images, grids)."""
    found = [base64.b64decode(out["data"]["image/png"]) for out in outs if "image/png" in out.get("data", {})]
    for out in outs:
        html = out.get("data", {}).get("text/html", "")
        found += [base64.b64decode(data) for data in re.findall(r"data:image/(?:jpeg|png);base64,([^\"']+)", html)]
    return found


def _texts(outs: list[Any]) -> str:
    parts = []
    for out in outs:
        parts.append(out.get("text", ""))
        parts += [str(value) for key, value in out.get("data", {}).items() if key.startswith("text/")]
    return "\n".join(parts)


def _check_quickstart(nb: Any, html: str) -> None:
    outs = outputs(nb)
    pictures = _pictures(outs)
    assert pictures, "the quickstart shows an image"
    assert Image.open(io.BytesIO(pictures[0])).size[0] > 0
    assert "<audio controls" in html and "autoplay" not in html, "a player that never starts by itself"
    (chat,) = [cell for cell in nb.cells if cell.cell_type == "code" and "Describe this picture" in cell.source]
    assert len(_texts(chat.outputs).strip()) > 20, "the streamed answer stays in the saved notebook"
    assert any("vomni_nb" in out.get("metadata", {}) for out in outs), "the provenance survives static rendering"
    assert "Qwen/Qwen3-Omni-30B-A3B-Instruct" in _texts(outs)  # the last cell listed the servers


def _check_gpu_server(nb: Any, html: str) -> None:
    text = _texts(outputs(nb))
    # Without a GPU the manager ran the stand-in `vllm` (kind vllm), read its log, and explained its failure.
    assert "no GPU here: the stand-ins" in text and "Tongyi-MAI/Z-Image-Turbo ready at" in text
    assert "vllm serve: error: unrecognized arguments: --stage-configs-path" in text
    assert "--stage-configs-path is now --deploy-config" in text  # the advice line
    assert "Application startup complete." in text  # %omni_server logs
    assert "replica-1" in text and _pictures(outputs(nb)), "the attached replicas made pictures"


CHECKS: dict[str, Callable[[Any, str], None]] = {
    "01_quickstart": _check_quickstart,
    "06_gpu_server": _check_gpu_server,
}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_headless(notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch, tmp_path)
    work = workspace(tmp_path)
    html = run_headless(work / notebook.name, tmp_path / "out", cwd=work)
    executed = nbformat.read(tmp_path / "out" / notebook.name, as_version=4)
    assert errors(executed) == []
    CHECKS[notebook.stem](executed, html.read_text(encoding="utf-8"))
