"""A database or folder we did not write is refused with HistoryError and left byte for byte as it was."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.history import make_record, png_bytes
from vomni_nb._history import schema
from vomni_nb.errors import HistoryError
from vomni_nb._history import HistoryStore


def _other_programs_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('my thesis outline')")
    conn.commit()
    conn.close()


def _empty_sqlite_db_of_another_program(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 3")  # makes the file exist, with no tables
    conn.close()


def _our_mark_not_in_wal_mode(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    conn.execute("CREATE TABLE entries (x)")
    conn.commit()
    conn.close()


def _our_mark_but_not_our_tables(path: Path) -> None:
    _our_mark_not_in_wal_mode(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


def _from_a_newer_vomni_nb(path: Path) -> None:
    with HistoryStore(path) as store:
        store.record(make_record())
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _vomni_migrations (name, applied_at) VALUES ('m099_from_the_future', 'later')")
    conn.commit()
    conn.close()


def _ours_but_damaged(path: Path) -> None:
    with HistoryStore(path) as store:
        for index in range(40):
            store.record(make_record(prompt=f"entry {index} " + "words " * 200))
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page : 5 * page] = b"\xa5" * (2 * page)  # two pages of the entries table are garbage
    path.write_bytes(bytes(data))


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "another program's database": (_other_programs_db, "another program's SQLite database"),
    "an empty database of another program": (_empty_sqlite_db_of_another_program, "another program's SQLite database"),
    "a text file": (lambda p: p.write_text("name,score\nada,10\n"), "not a SQLite database"),
    "an empty file": (lambda p: p.write_bytes(b""), "an empty file"),
    "a truncated header": (lambda p: p.write_bytes(b"SQLite format 3\0" + b"\0" * 20), "not a SQLite database"),
    "our mark, not in WAL mode": (_our_mark_not_in_wal_mode, "vomni_nb did not make"),
    "our mark without our tables": (_our_mark_but_not_our_tables, "has no _vomni_migrations table"),
    "a newer vomni_nb": (_from_a_newer_vomni_nb, "written by a newer vomni_nb"),
    "a damaged database of ours": (_ours_but_damaged, "is damaged"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_and_left_byte_for_byte(tmp_path: Path, case: str) -> None:
    make, message = CASES[case]
    path = tmp_path / "history.sqlite3"
    make(path)
    before = path.read_bytes()
    others = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(HistoryError, match=message) as raised:
        HistoryStore(path)
    assert "left as it was" in str(raised.value) or "damaged" in str(raised.value)
    assert raised.value.path == str(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == others  # no journal, no file store beside it


def test_a_folder_where_the_database_should_be(tmp_path: Path) -> None:
    (tmp_path / "history.sqlite3").mkdir()
    (tmp_path / "history.sqlite3" / "history.sqlite3").mkdir()
    with pytest.raises(HistoryError, match="is a folder"):
        HistoryStore(tmp_path / "history.sqlite3")


def test_a_file_store_folder_we_did_not_write(tmp_path: Path) -> None:
    files = tmp_path / "history-files"
    files.mkdir()
    (files / "holiday.jpg").write_bytes(b"\xff\xd8\xff my photo")
    with pytest.raises(HistoryError, match="folder vomni_nb did not write"):
        HistoryStore(tmp_path / "history.sqlite3")
    assert [p.name for p in files.iterdir()] == ["holiday.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history-files"]  # no database was made either
    (tmp_path / "other-files").write_text("a file where the folder should be")
    with pytest.raises(HistoryError, match="is a file"):
        HistoryStore(tmp_path / "other.sqlite3")


def test_an_empty_file_store_folder_is_adopted(tmp_path: Path) -> None:
    (tmp_path / "history-files").mkdir()
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        entry = store.record(make_record(), files=[png_bytes()])
        assert entry is not None and entry.files[0].exists


def test_two_stores_created_at_once_share_one_database(tmp_path: Path) -> None:
    # The slow half of the race, in one process: a database appears while we build ours.
    path = tmp_path / "history.sqlite3"
    schema.create(path, timeout=5)
    first = path.stat().st_ino
    schema.create(path, timeout=5)  # loses the race: keeps theirs, leaves no temporary files
    assert path.stat().st_ino == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.sqlite3"]
