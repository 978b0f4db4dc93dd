"""``load_source``: what ``%%omni_edit SOURCE`` and ``--image/--audio SRC`` name, a history id included."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.history import make_record, png_bytes
from vomni_nb import OmniClient
from vomni_nb._history import HistoryStore, load_source, parse_history_id
from vomni_nb.errors import InvalidRequestError


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with HistoryStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def test_ids_are_told_from_paths() -> None:
    assert parse_history_id(12) == (12, None) and parse_history_id("12") == (12, None)
    assert parse_history_id(" #12 ") == (12, None) and parse_history_id("#12:1") == (12, 1)
    for other in ("./12", "12.png", 0, -3, True, "#", "fox", b"12", 1.5):
        assert parse_history_id(other) is None, other


def test_a_history_id_names_a_stored_file(store: HistoryStore, tmp_path: Path) -> None:
    picture, other = png_bytes((1, 2, 3)), png_bytes((4, 5, 6))
    image = store.record(make_record(), files=[picture, other], embed_recipe=False)
    speech = store.record(make_record(kind="speech"), files=[(b"RIFF\0\0\0\0WAVEfmt ", "wav")])
    failed = store.record(make_record(), status="error", error="BadRequestError: 400")
    assert image is not None and speech is not None and failed is not None
    assert load_source(image.id, store=store) == image.files[0].path
    assert Path(load_source(f"#{image.id}:1", kind="image", store=store)).read_bytes() == other
    assert load_source(str(speech.id), kind="audio", store=store) == speech.files[0].path
    with pytest.raises(InvalidRequestError, match=f"History #{speech.id} has no image output"):
        load_source(speech.id, kind="image", store=store)
    with pytest.raises(InvalidRequestError, match="it failed \\(BadRequestError: 400\\)"):
        load_source(failed.id, store=store)
    with pytest.raises(InvalidRequestError, match="no history entry #99"):
        load_source(99, store=store)
    with pytest.raises(InvalidRequestError, match="there is no #1:5"):
        load_source(f"#{image.id}:5", store=store)
    named = tmp_path / "12"
    named.write_bytes(picture)
    assert load_source(str(named)) == named  # a file named like an id, given as a path


def test_paths_results_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes())
    assert load_source(path) == path and load_source(str(path)) == path
    assert load_source(b"raw") == b"raw"
    with pytest.raises(InvalidRequestError, match="neither a history id"):
        load_source(tmp_path / "missing.png")
    with pytest.raises(InvalidRequestError, match="Cannot use float"):
        load_source(1.5)


def test_an_edit_from_a_history_id(image_server, edit_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as painter, OmniClient(edit_server.url, history=store) as editor:
        image = painter.image("a red barn", size="64x64", seed=2)
        from_id = editor.edit(load_source(image.history_id, kind="image", store=store), "paint it blue", seed=1)
        from_result = editor.edit(load_source(image), "paint it blue", seed=1)
    assert from_id.width == 64 and from_id.data == from_result.data  # the recipe chunks do not change the edit
