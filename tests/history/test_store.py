"""HistoryStore in one process: record, read back, search (FTS5 and LIKE), files by content, switches."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import platformdirs
import pytest

from tests.support.history import assert_every_row_has_its_files, make_record, png_bytes
from vomni_nb._history import schema
from vomni_nb.errors import HistoryError, InvalidRequestError
from vomni_nb._history import (
    HistoryStore,
    default_history_path,
    default_store,
    history_enabled,
    png_without_recipe,
    read_recipe,
    set_history_enabled,
)


def _fill(store: HistoryStore) -> None:
    store.record(make_record(prompt="a lighthouse at dusk"), files=[png_bytes((1, 2, 3))])
    store.record(make_record(prompt="A quick brown FOX jumps", seed=11), files=[png_bytes((4, 5, 6))])
    store.record(make_record(kind="speech", model="Qwen/Qwen3-TTS", prompt="the fox says hello"), files=[b"RIFF\0\0\0\0WAVEfmt "])
    store.record(make_record(prompt="foxglove in a meadow, 50% sun_light", model="other/Model-B"))
    store.record(make_record(prompt="red fox kit in snow"), status="error", error="500 from the server: boom")


def test_record_and_get_round_trip(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        png = png_bytes()
        record = make_record(prompt="a red fox, in snow", future_field={"kept": [1, 2]})
        entry = store.record(record, files=[png], metrics={"peak_memory_mb": 812.5})
        assert entry is not None and store.get(entry.id) == entry
        assert (entry.kind, entry.model, entry.server_url, entry.seed, entry.status) == (
            "image", "Tongyi-MAI/Z-Image-Turbo", "http://127.0.0.1:8091", 7, "ok"
        )
        assert entry.created_at == record["created_at"] and entry.request_id == "req-1"
        assert entry.params == record["params"] and entry.timings == record["timings"]
        assert entry.metrics == {"peak_memory_mb": 812.5} and entry.error is None
        assert entry.record["future_field"] == {"kept": [1, 2]}  # unknown keys are kept in the JSON
        (stored,) = entry.files
        data = stored.path.read_bytes()
        assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.mime == "image/png" and stored.size == len(data)
        assert stored.path.parent.name == stored.sha256[:2] and stored.path.name == stored.sha256 + ".png"
        assert png_without_recipe(data) == png  # the server's bytes, plus the recipe
        assert read_recipe(stored.path)["prompt"] == "a red fox, in snow"
        assert store.path_of(stored.sha256) == stored.path
        assert store.get(entry.id + 1) is None


def test_identical_content_is_stored_once_and_never_rewritten(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        speech = b"RIFF\0\0\0\0WAVEfmt " + bytes(range(256))
        first = store.record(make_record(kind="speech"), files=[speech])
        assert first is not None
        path = first.files[0].path
        before = path.stat()
        second = store.record(make_record(kind="speech", prompt="again"), files=[speech])
        assert second is not None and second.files[0].path == path and path.suffix == ".wav"
        assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_ino == before.st_ino
        assert [e.id for e in store.entries_with_file(first.files[0].sha256)] == [second.id, first.id]
        blobs = [p for p in store.files_dir.rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert blobs == [path]


def test_files_as_bytes_with_a_hint_or_as_paths(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 64)
        entry = store.record(make_record(kind="video"), files=[(b"\x01\x02" * 50, "pcm"), clip, str(clip)])
        assert entry is not None
        assert [(f.path.suffix, f.mime) for f in entry.files] == [(".pcm", "audio/L16"), (".mp4", "video/mp4"), (".mp4", "video/mp4")]
        with pytest.raises(InvalidRequestError, match="Cannot read output file"):
            store.record(make_record(), files=[tmp_path / "nope.png"])


@pytest.mark.parametrize("fts", [True, False], ids=["fts5", "like"])
def test_search_finds_the_fox(tmp_path: Path, fts: bool) -> None:
    with HistoryStore(tmp_path / "h.sqlite3", fts=fts) as store:
        assert store.fts is fts
        _fill(store)
        found = store.search("fox")
        prompts = [e.prompt for e in found]
        assert "A quick brown FOX jumps" in prompts and "red fox kit in snow" in prompts and "the fox says hello" in prompts
        assert "a lighthouse at dusk" not in prompts
        assert [e.id for e in found] == sorted((e.id for e in found), reverse=True)  # newest first
        assert [e.prompt for e in store.search("fox", kind="speech")] == ["the fox says hello"]
        assert [e.prompt for e in store.search("brown jumps")] == ["A quick brown FOX jumps"]  # every word
        assert [e.prompt for e in store.search("fox", model="Z-Image-Turbo", limit=1)] == ["red fox kit in snow"]
        assert [e.prompt for e in store.search(model="other/Model-B")] == ["foxglove in a meadow, 50% sun_light"]
        assert len(store.search()) == 5 and len(store.search(limit=2)) == 2 and len(store.search(limit=None)) == 5
        # Text that is syntax elsewhere (FTS5 operators, LIKE wildcards, quotes) is only text here.
        assert store.search('fox" OR lighthouse') == () and store.search("NEAR(") == ()
        assert [e.prompt for e in store.search("50%")] == ["foxglove in a meadow, 50% sun_light"]
        assert [e.prompt for e in store.search("sun_light")] == ["foxglove in a meadow, 50% sun_light"]
        store.record(make_record(prompt="sunXlight"))
        assert [e.prompt for e in store.search("sun_light")] == ["foxglove in a meadow, 50% sun_light"]
        assert store.search("zebra") == ()
        assert [e.prompt for e in store.search("%")] == ["foxglove in a meadow, 50% sun_light"]  # no word: literal


def test_like_rows_are_indexed_when_an_fts_store_opens_the_database(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    with HistoryStore(db, fts=True) as store:
        store.record(make_record(prompt="an arctic fox"))
    with HistoryStore(db, fts=False) as store:  # e.g. a kernel whose SQLite lacks FTS5
        store.record(make_record(prompt="a fennec fox"))
        assert len(store.search("fox")) == 2
    with HistoryStore(db, fts=True) as store:
        assert sorted(e.prompt for e in store.search("fox")) == ["a fennec fox", "an arctic fox"]


def test_bad_search_arguments(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        with pytest.raises(InvalidRequestError, match="kind must be one of"):
            store.search(kind="picture")
        with pytest.raises(InvalidRequestError, match="limit"):
            store.search(limit=0)


@pytest.mark.parametrize(
    ("record", "kwargs", "message"),
    [
        (make_record(kind="painting"), {}, "kind 'painting'"),
        (make_record(), {"status": "done"}, "status 'done'"),
        (make_record(schema="vomni_nb/9"), {}, "unknown record schema"),
        (make_record(params={"x": float("nan")}), {}, "not JSON-safe"),
        (make_record(params={"x": object()}), {}, "not JSON-safe"),
        (make_record(params=["not", "a", "dict"]), {}, "params are not a dict"),
    ],
)
def test_bad_records_are_refused_before_anything_is_written(
    tmp_path: Path, record: dict[str, object], kwargs: dict[str, str], message: str
) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        with pytest.raises(HistoryError, match=message):
            store.record(record, files=[png_bytes()], **kwargs)  # type: ignore[arg-type]
        assert len(store) == 0 and list(store.files_dir.glob("*/*")) == []


def test_errors_and_secrets(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        record = make_record(params={"api_key": "sk-secret", "size": "32x24"})
        entry = store.record(record, status="error", error=RuntimeError("401: Bearer sk-secret rejected"))
        assert entry is not None and entry.status == "error" and entry.files == ()
        assert entry.error == "RuntimeError: 401: Bearer *** rejected"
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("h.sqlite3*"))
        assert b"sk-secret" not in raw


def test_an_old_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite3"
    schema.create(db, timeout=5, migrations=schema.MIGRATIONS[:1])
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO entries (created_at, recorded_at, kind, prompt, status, record) VALUES (?, ?, ?, ?, ?, ?)",
        ("2024-01-01", "2024-01-01", "chat", "an old fox question", "ok", json.dumps(make_record(kind="chat"))),
    )
    conn.commit()
    conn.close()
    with HistoryStore(db) as store:
        applied = [row[0] for row in store._db.execute("SELECT name FROM _vomni_migrations ORDER BY rowid")]
        assert applied == [name for name, _ in schema.MIGRATIONS]
        assert [e.prompt for e in store.search("fox")] == ["an old fox question"]  # the index was built too
        store.record(make_record(), files=[png_bytes()])
        assert assert_every_row_has_its_files(db) == 2


def test_the_database_is_wal_with_a_busy_timeout_and_our_mark(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3", timeout=7) as store:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 7000
        assert store._db.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID


def test_path_of_an_unknown_file(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        with pytest.raises(HistoryError, match="No file with SHA-256"):
            store.path_of("0" * 64)


def test_default_path_env_and_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "elsewhere" / "mine.db"))
    assert default_history_path() == tmp_path / "elsewhere" / "mine.db"
    with HistoryStore() as store:
        assert store.path == tmp_path / "elsewhere" / "mine.db" and store.files_dir == tmp_path / "elsewhere" / "mine-files"
    with HistoryStore(tmp_path) as in_folder:
        assert in_folder.path == tmp_path / "history.sqlite3"  # a folder holds history.sqlite3
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path))
    with HistoryStore() as from_env:
        assert from_env.path == tmp_path / "history.sqlite3"
    monkeypatch.delenv("VOMNI_HISTORY")
    assert default_history_path() == Path(platformdirs.user_cache_dir("vomni_nb")) / "history" / "history.sqlite3"


def test_off_switches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        monkeypatch.setenv("VOMNI_HISTORY", "off")
        assert not history_enabled() and default_store() is None
        assert store.record(make_record(), files=[png_bytes()]) is None
        monkeypatch.delenv("VOMNI_HISTORY")
        set_history_enabled(False)
        try:
            assert not history_enabled() and store.record(make_record()) is None
        finally:
            set_history_enabled(True)
        assert len(store) == 0 and list(store.files_dir.glob("*/*")) == []
        assert history_enabled() and store.record(make_record()) is not None
        assert default_store(tmp_path / "h.sqlite3") is default_store(tmp_path / "h.sqlite3")


def test_history_error_is_ours_and_pickles() -> None:
    import pickle

    from vomni_nb.errors import VomniError

    error = pickle.loads(pickle.dumps(HistoryError("disk full", path="/x/history.sqlite3")))
    assert isinstance(error, VomniError) and str(error) == "disk full" and error.path == "/x/history.sqlite3"


def test_the_public_names_of_the_history_module() -> None:
    import vomni_nb._history as module

    assert len(module.__all__) == len(set(module.__all__))
    assert all(hasattr(module, name) and not name.startswith("_") for name in module.__all__)
    assert {"HistoryStore", "Entry", "StoredFile", "HistoryTable", "history", "default_store", "read_recipe"} <= set(module.__all__)
