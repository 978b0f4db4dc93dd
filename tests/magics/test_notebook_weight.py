"""A 16-image 1024x1024 sweep, executed headless with nbclient: the saved notebook stays small (previews,
not the full PNGs), and nbconvert's HTML shows every cell as an <img>."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.kernels import REPO
from tests.support.sims import IMAGE_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.kernel]

LIMIT = 2_000_000  # bytes a 16-image sweep may add to the saved .ipynb


@pytest.mark.timeout(600)
def test_a_sixteen_image_sweep_adds_under_two_megabytes(start_sim: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    sim = start_sim(IMAGE_MODEL)
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(f"%load_ext vomni_nb\nimport vomni_nb\nvomni_nb.default_manager().attach({sim.url!r});"),
        nbformat.v4.new_code_cell("%%omni_image --seed 1..16 --size 1024x1024 --out grid\na lighthouse at dusk"),
        nbformat.v4.new_code_cell("import base64\nprint(sum(len(base64.b64encode(image.data)) for image in grid.images))"),
    ]
    empty = tmp_path / "empty.ipynb"
    nbformat.write(notebook, empty)
    NotebookClient(notebook, timeout=540, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    executed = tmp_path / "executed.ipynb"
    nbformat.write(notebook, executed)
    added = executed.stat().st_size - empty.stat().st_size
    full_pngs = int(notebook.cells[2].outputs[0]["text"])
    print(f"\n16-image 1024x1024 sweep: the saved notebook grew by {added:,} bytes; "
          f"the full PNGs would be {full_pngs:,} bytes of base64")
    grid_output = notebook.cells[1].outputs[-1]
    assert grid_output["data"]["text/html"].count("data:image/jpeg;base64,") == 16
    assert "image/png" not in grid_output["data"]
    assert added < LIMIT and full_pngs > 10 * added

    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_notebook_node(notebook)
    assert page.count('alt="a lighthouse at dusk"') == 16  # each preview's caption names its seed
    assert all(re.search(rf"<figcaption[^>]*>seed {seed}( ·|<)", page) for seed in range(1, 17))
