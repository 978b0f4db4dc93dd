"""The history table: static HTML with thumbnails plus text, frozen, and intact through nbconvert."""

from __future__ import annotations

import base64
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter
from PIL import Image

from tests.support.history import make_record, png_bytes
from vomni_nb._history import HistoryStore, HistoryTable, default_history_path, history


def _store_with_a_fox_sweep(path: Path) -> HistoryStore:
    store = HistoryStore(path)
    store.record(make_record(prompt="a lighthouse at dusk"), files=[png_bytes((10, 10, 200), (300, 200))])
    for seed in (1, 2, 3):
        store.record(make_record(prompt="a red fox in the snow <b>", seed=seed), files=[png_bytes((200, 60, seed), (512, 512))])
    store.record(make_record(kind="speech", prompt="the fox says hello"), files=[b"RIFF\0\0\0\0WAVEfmt "])
    store.record(make_record(kind="chat", prompt="why are foxes red?"), status="error", error="503 from the server: busy")
    return store


def test_the_table_in_text_and_html(tmp_path: Path) -> None:
    with _store_with_a_fox_sweep(tmp_path / "h.sqlite3") as store:
        table = history(n=10, search="fox", store=store)
    assert isinstance(table, HistoryTable) and len(table) == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.entries = ()  # type: ignore[misc]
    text = repr(table)
    lines = text.splitlines()
    assert lines[0].startswith("History: 5 entries, matching 'fox'")
    assert lines[1].split() == ["id", "time", "kind", "model", "seed", "status", "prompt"]
    assert "a red fox in the snow <b>" in text and "lighthouse" not in text
    assert "error   why are foxes red? [503 from the server: busy]" in text

    bundle, metadata = table._repr_mimebundle_()
    assert bundle["text/plain"] == text and metadata == {"vomni_nb": {"history_ids": [6, 5, 4, 3, 2]}}
    page = bundle["text/html"]
    assert "a red fox in the snow &lt;b&gt;" in page and "<b>" not in page  # prompts are escaped
    thumbnails = [part.split('"')[0] for part in page.split('src="')[1:]]
    assert len(thumbnails) == 3  # the three fox images; speech and chat rows have none
    for url in thumbnails:
        assert url.startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert image.format == "JPEG" and max(image.size) <= 96
    assert len(page) < 20_000  # small previews, not the 512x512 originals


def test_filters_and_limits(tmp_path: Path) -> None:
    with _store_with_a_fox_sweep(tmp_path / "h.sqlite3") as store:
        assert len(history(n=2, store=store)) == 2
        assert [e.kind for e in history(kind="speech", store=store).entries] == ["speech"]
        assert len(history(model="Z-Image-Turbo", store=store)) == 6
        assert len(history(search="zebra", store=store)) == 0
        assert repr(history(search="zebra", store=store)).splitlines()[0].startswith("History: 0 entries")


def test_history_off_with_no_database_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOMNI_HISTORY", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    table = history()
    assert len(table) == 0 and "history is off" in repr(table)
    assert not default_history_path().parent.exists()


def test_the_table_renders_in_nbconvert_html(tmp_path: Path) -> None:
    with _store_with_a_fox_sweep(tmp_path / "h.sqlite3") as store:
        bundle, metadata = history(search="fox", store=store)._repr_mimebundle_()
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%omni_history --search fox")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle, metadata=metadata)]
    notebook.cells = [cell]
    path = tmp_path / "history.ipynb"
    nbformat.write(notebook, path)  # saved and read back, as a notebook on disk would be
    page, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    assert 'class="vomni-history-table"' in page
    assert page.count("data:image/jpeg;base64,") == 3
    assert "a red fox in the snow &lt;b&gt;" in page and "the fox says hello" in page


def test_importing_the_history_module_is_light() -> None:
    code = (
        "import sys, vomni_nb._history; "
        "print(','.join(m for m in ('PIL', 'IPython', 'platformdirs', 'ipywidgets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
