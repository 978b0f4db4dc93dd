"""A streamed chat answer executed headless (nbclient): the saved notebook holds its whole, final text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from tests.support.kernels import REPO
from tests.support.sims import OMNI_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def test_the_saved_notebook_holds_the_final_streamed_text(start_sim: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sim = start_sim(OMNI_MODEL, "--tokens-per-second", "200")
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    nb = new_notebook(cells=[
        new_code_cell(f"%load_ext vomni_nb\n%omni_server attach {sim.url}"),
        new_code_cell("%%omni_chat --new --out answer\nTell me about the keepers of lighthouses."),
        new_code_cell("print(answer.text)"),
    ])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    nbformat.write(nb, tmp_path / "chat.ipynb")
    saved = nbformat.read(tmp_path / "chat.ipynb", as_version=4)
    shown = [out for out in saved.cells[1].outputs if any(out.get("data", {}).values())]
    text = saved.cells[2].outputs[0]["text"].strip()
    assert len(shown) == 1 and shown[0]["output_type"] == "display_data"
    assert shown[0]["data"]["text/markdown"] == shown[0]["data"]["text/plain"] == text
    assert text.startswith("[vomni-sim]") and "▌" not in text
    assert shown[0]["metadata"]["vomni_nb"]["kind"] == "chat"
