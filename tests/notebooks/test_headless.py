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


def _cell(nb: Any, start: str) -> Any:
    """The one code cell whose source starts with ``start``."""
    (found,) = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.startswith(start)]
    return found


def _kinds(outs: list[Any]) -> list[str]:
    """The provenance kind of every output that carries one (the static form of each result)."""
    return [out["metadata"]["vomni_nb"].get("kind") for out in outs if "vomni_nb" in out.get("metadata", {})]


def _check_images(nb: Any, html: str) -> None:
    outs = outputs(nb)
    assert len(_pictures(_cell(nb, "%%omni_image --size 256x256 --steps 8 --seed 1..8").outputs)) == 8
    assert len(_pictures(_cell(nb, "%%omni_image --size 256x256 --seed 7 --guidance").outputs)) == 6
    assert "model Qwen-Image" in _texts(_cell(nb, "%%omni_image --model").outputs)  # the comparison's labels
    assert "True" in _texts(_cell(nb, "import vomni_nb").outputs)  # the twin made the magic's bytes again
    assert "Qwen/Qwen-Image-Edit" in _texts(_cell(nb, "%%omni_edit").outputs)
    assert html.count("<video controls") == 1
    assert "image" in _kinds(outs) and "video" in _kinds(outs)


def _check_speech(nb: Any, html: str) -> None:
    # One player each: the greeting, the styled line, the stream's static player, three batch lines, the clone.
    assert html.count("<audio controls") == 7
    text = _texts(outputs(nb))
    assert "vivian" in _texts(_cell(nb, "%omni_voice list").outputs)
    assert "voice 'keeper' uploaded" in text and "voice 'keeper' deleted" in text
    assert "voice='keeper', model='Qwen/Qwen3-TTS-12Hz-1.7B-Base'" in text


def _check_chat(nb: Any, html: str) -> None:
    chats = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.startswith("%%omni_chat")]
    assert len(chats) == 5
    for cell in chats:  # each answer ended whole, as Markdown (with a player when spoken) and plain text
        final = [out for out in cell.outputs if "Simulated reply" in str(out.get("data", {}).get("text/plain", ""))]
        assert len(final) == 1 and "▌" not in _texts(final), cell.source
        assert {"text/markdown", "text/html"} & set(final[0]["data"]), final[0]["data"].keys()
    assert "You sent a 512x512 image" in _texts(_cell(nb, "%%omni_chat --image").outputs)
    assert "1.00 s of audio" in _texts(_cell(nb, "%%omni_chat --audio").outputs)
    assert "<audio controls" in _texts(_cell(nb, "%%omni_chat --voice").outputs)  # the spoken answer's player
    assert "(5," in _texts(_cell(nb, "import vomni_nb").outputs)  # system + two exchanges in the Conversation


def _check_history(nb: Any, html: str) -> None:
    table = _texts(_cell(nb, "%omni_history").outputs)
    assert "a red fox in the snow" in table and "speech" in table
    assert "byte-identical" in _texts(_cell(nb, "import vomni_nb").outputs)  # the rerun by history id
    assert "byte-identical" in _texts(_cell(nb, "vomni_nb.rerun(saved)").outputs)  # the rerun from a file
    assert "'schema': 'vomni_nb/1'" in _texts(_cell(nb, "saved = fox.save").outputs)  # the PNG's own recipe


def _check_gpu_server(nb: Any, html: str) -> None:
    text = _texts(outputs(nb))
    # Without a GPU the manager ran the stand-in `vllm` (kind vllm), read its log, and explained its failure.
    assert "no GPU here: the stand-ins" in text and "Tongyi-MAI/Z-Image-Turbo ready at" in text
    assert "vllm serve: error: unrecognized arguments: --stage-configs-path" in text
    assert "--stage-configs-path is now --deploy-config" in text  # the advice line
    assert "Application startup complete." in text  # %omni_server logs
    assert "6 images in" in text and "on replica-0, replica-1" in text, "the sweep ran on both attached replicas"
    assert len(_pictures(_cell(nb, "%%omni_image --model black-forest-labs/FLUX.1-dev").outputs)) == 6


CHECKS: dict[str, Callable[[Any, str], None]] = {
    "01_quickstart": _check_quickstart,
    "02_images_and_sweeps": _check_images,
    "03_speech": _check_speech,
    "04_chat_and_vision": _check_chat,
    "05_history_and_provenance": _check_history,
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
    text = html.read_text(encoding="utf-8")
    # What a reader of the saved notebook or its HTML gets: static outputs only, players that wait for a click.
    assert not [out for out in outputs(executed) if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert not executed.metadata.get("widgets"), "a widget was left in the saved notebook"
    assert not re.search(r"<(audio|video)[^>]*\b(autoplay|loop)\b", text)
    CHECKS[notebook.stem](executed, text)
