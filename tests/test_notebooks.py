"""Every notebook in notebooks/ runs headless, top to bottom, against vomni-sim (`make demo HEADLESS=1`: tests/test_demo.py)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from tools.demo import run_headless

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture
def isolated_kernel_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, image_server: object) -> Path:
    """Kernels inherit this environment: a private server registry and the test's image server."""
    monkeypatch.setenv("VOMNI_BASE_URL", image_server.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_SIM_STORAGE", str(tmp_path / "storage"))
    monkeypatch.setenv("VOMNI_SIM_VOICES_DIR", str(tmp_path / "voices"))
    return tmp_path


def test_there_are_notebooks() -> None:
    assert any(path.name == "quickstart.ipynb" for path in NOTEBOOKS)


def test_the_quickstart_names_the_variable_the_client_reads() -> None:
    # Issue 7 item 18: the quickstart said VOMNI_URL while OmniClient() reads VOMNI_BASE_URL.
    source = (Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb").read_text()
    assert "VOMNI_BASE_URL" in source and "VOMNI_URL" not in source.replace("VOMNI_BASE_URL", "")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_headless(notebook: Path, isolated_kernel_env: Path) -> None:
    html = run_headless(notebook, isolated_kernel_env / "out")
    executed = nbformat.read(isolated_kernel_env / "out" / notebook.name, as_version=4)
    outputs = [out for cell in executed.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = html.read_text(encoding="utf-8")
    if notebook.name == "quickstart.ipynb":
        # A light picture is an image/png output; a heavy one a JPEG preview in HTML (history store: the file).
        pictures = [out["data"]["image/png"] for out in outputs if "image/png" in out.get("data", {})]
        pictures += [out["data"]["text/html"].split("data:image/jpeg;base64,")[1].split('"')[0] for out in outputs
                     if "data:image/jpeg;base64," in out.get("data", {}).get("text/html", "")]
        assert pictures, "the quickstart shows an image"
        assert Image.open(io.BytesIO(base64.b64decode(pictures[0]))).size[0] > 0
        assert "<audio controls" in text, "the quickstart shows an audio player"
        assert "autoplay" not in text
        # The streamed chat printed text and its result displays as markdown.
        assert any("text/markdown" in out.get("data", {}) for out in outputs)
        # Static rendering keeps the provenance in the output metadata.
        assert any("vomni_nb" in out.get("metadata", {}) for out in outputs)
    if notebook.name == "media_magics.ipynb":
        _every_result_is_static(executed, outputs, text)


def _every_result_is_static(executed: nbformat.NotebookNode, outputs: list[dict], text: str) -> None:
    """media_magics.ipynb (every generating magic, its servers started with %omni_server ... --sim): the
    HTML shows an <img> per image, an <audio> per speech, the chat text and a <video>; nothing is a widget."""
    kinds = [out["metadata"]["vomni_nb"].get("kind") for out in outputs if "vomni_nb" in out.get("metadata", {})]
    images = sum("image/png" in out.get("data", {}) for out in outputs)
    assert images == kinds.count("image") >= 1 and text.count("<img ") == images
    spoken = kinds.count("speech") + 3 * kinds.count("speech_batch") + 1  # the chat's spoken answer too
    assert kinds.count("speech") == 2 and kinds.count("speech_batch") == 1 and text.count("<audio controls") == spoken
    chats = [out["data"]["text/markdown"] for out in outputs if "text/markdown" in out.get("data", {})]
    assert len(chats) == kinds.count("chat") == 3 and all(chat.split(". ")[0] in text for chat in chats)
    assert "▌" not in "".join(chats)  # the streamed answers ended whole
    assert kinds.count("video") == 1 and text.count("<video controls") == 1
    assert not re.search(r"<(audio|video)[^>]*\b(autoplay|loop)\b", text)  # players never start or loop by themselves
    assert not [out for out in outputs if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert not executed.metadata.get("widgets"), "a widget was left in the saved notebook"
