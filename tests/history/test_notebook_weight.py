"""Notebook weight, end to end: a 16-image 1024x1024 sweep run in a real kernel (nbclient) keeps the
saved notebook under 2 MB while all 16 full files are in the history store, and the history table
renders in nbconvert HTML."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from PIL import Image

from tests.support.history import assert_every_row_has_its_files
from vomni_nb._history import HistoryStore
from vomni_nb._recipes import png_size

LIMIT = 2 * 1024 * 1024

CELLS = [
    "import vomni_nb\nfrom vomni_nb import OmniClient\nclient = OmniClient({url!r})",
    "sweep = client.images('a red fox in the snow', seeds=list(range(16)), size='1024x1024', concurrency=4)\nsweep",
    "single = client.image('a lighthouse at dusk', size='1024x1024', seed=7)\nsingle",
    "vomni_nb.history(n=20, search='fox')",
]


def run_notebook(url: str, folder: Path) -> tuple[Path, nbformat.NotebookNode]:
    """The cells above, executed headless in a fresh kernel (it inherits VOMNI_HISTORY) and saved."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source.format(url=url)) for source in CELLS]
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    path = folder / "sweep.ipynb"
    nbformat.write(notebook, path)
    return path, notebook


@pytest.mark.slow
@pytest.mark.kernel
@pytest.mark.timeout(600)
def test_a_16_image_sweep_keeps_the_notebook_small(image_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "history" / "history.sqlite3"
    monkeypatch.setenv("VOMNI_HISTORY", str(db))
    path, notebook = run_notebook(image_server.url, tmp_path)
    errors = [out for cell in notebook.cells for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    size = path.stat().st_size
    assert size < LIMIT, f"the saved notebook is {size} bytes"

    sweep_output, single_output = notebook.cells[1].outputs[-1], notebook.cells[2].outputs[-1]
    items = sweep_output.metadata["vomni_nb"]["items"]
    assert len(items) == 16 and all(isinstance(item["history_id"], int) for item in items)
    assert sweep_output.data["text/html"].count("data:image/jpeg;base64,") == 16
    assert "full file: " in single_output.data["text/plain"] and "image/png" not in single_output.data
    preview = single_output.data["text/html"].split("data:image/jpeg;base64,")[1].split('"')[0]
    assert max(Image.open(io.BytesIO(base64.b64decode(preview))).size) == 512

    with HistoryStore(db) as store:
        entries = store.search("red fox", limit=None)
        assert sorted(entry.id for entry in entries) == sorted(item["history_id"] for item in items)
        for entry in entries:
            (file,) = entry.files
            assert png_size(file.path.read_bytes()) == (1024, 1024)  # the full file, not the preview
        stored = sum(file.size for entry in entries for file in entry.files)
    assert stored > 4 * size  # the weight went to the store, not into the notebook
    assert assert_every_row_has_its_files(db) == 17

    page, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    assert 'class="vomni-history-table"' in page and page.count("a red fox in the snow") >= 16
    print(f"\nsaved notebook: {size} bytes; sweep output: {len(sweep_output.data['text/html'])} bytes of HTML; "
          f"single image output: {len(single_output.data['text/html'])} bytes; 17 full files in the store: {stored} bytes")
