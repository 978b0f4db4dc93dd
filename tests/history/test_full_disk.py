"""A full disk gives a clear HistoryError, records nothing half-way, and leaves the database intact.

Three ways to fill it: ENOSPC injected into the file write (the one mock here: a real disk cannot be
made full at one chosen write), SQLite's own SQLITE_FULL through ``PRAGMA max_page_count`` (the real
code path SQLite takes on a full disk), and a real 1 MiB tmpfs (needs root; skipped cleanly without).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.history import assert_every_row_has_its_files, make_record, png_bytes
from vomni_nb._history import blobs as _blobs
from vomni_nb.errors import HistoryError
from vomni_nb._history import HistoryStore


def _no_temp_files(store: HistoryStore) -> bool:
    return not list(store.files_dir.glob("*/.tmp-*"))


def test_enospc_while_writing_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "history.sqlite3"
    with HistoryStore(db) as store:
        store.record(make_record(prompt="before"), files=[png_bytes((1, 1, 1))])

        def half_then_full(fd: int, data: bytes) -> None:
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(_blobs, "_write_all", half_then_full)
        with pytest.raises(HistoryError, match="No space left on the device holding .*history-files") as raised:
            store.record(make_record(prompt="during"), files=[png_bytes((2, 2, 2))])
        assert "VOMNI_HISTORY" in str(raised.value) and "generation itself is not affected" in str(raised.value)
        assert isinstance(raised.value.__cause__, OSError)
        assert len(store) == 1 and _no_temp_files(store)
        monkeypatch.undo()  # space is free again
        assert store.record(make_record(prompt="after"), files=[png_bytes((2, 2, 2))]) is not None
    assert assert_every_row_has_its_files(db) == 2


def test_sqlite_full_while_writing_the_row(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    with HistoryStore(db) as store:
        store.record(make_record(prompt="before"), files=[png_bytes((1, 1, 1))])
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page
        with pytest.raises(HistoryError, match="No space left on the device holding .*history.sqlite3"):
            store.record(make_record(prompt="during " + "x" * 50_000), files=[png_bytes((3, 3, 3))])
        assert not store._db.in_transaction and len(store) == 1
        store._db.execute("PRAGMA max_page_count = 1073741823")
        assert store.record(make_record(prompt="after " + "x" * 50_000)) is not None
        assert [e.prompt[:6] for e in store.search()] == ["after ", "before"]
    assert assert_every_row_has_its_files(db) == 2


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False, capture_output=True)


def test_a_real_full_tmpfs(tiny_disk: Path) -> None:
    db = tiny_disk / "history.sqlite3"
    with HistoryStore(db) as store:
        for index in range(2):
            store.record(make_record(prompt=f"noise {index}"), files=[(os.urandom(100_000), "pcm")])
        filler = tiny_disk / "filler"  # another program takes every byte left
        with open(filler, "wb", buffering=0) as handle:
            with pytest.raises(OSError) as full:
                while True:
                    handle.write(b"\0" * 4096)
            assert full.value.errno == errno.ENOSPC

        with pytest.raises(HistoryError, match="No space left on the device holding .*history-files"):
            store.record(make_record(prompt="an output file"), files=[(os.urandom(100_000), "pcm")])
        assert _no_temp_files(store)
        with pytest.raises(HistoryError, match="No space left on the device holding .*history.sqlite3"):
            store.record(make_record(prompt="a long prompt " * 20_000))  # no file: SQLite's own write fails
        assert len(store) == 2

        filler.unlink()
        assert store.record(make_record(prompt="after freeing space"), files=[b"RIFF\0\0\0\0WAVE"]) is not None
    assert assert_every_row_has_its_files(db) == 3
    with HistoryStore(db) as reopened:
        assert reopened.search("freeing")[0].prompt == "after freeing space"


def test_a_generation_while_the_tmpfs_is_full(tiny_disk: Path, image_server) -> None:  # type: ignore[no-untyped-def]
    from vomni_nb import OmniClient

    db = tiny_disk / "history.sqlite3"
    with HistoryStore(db) as store, OmniClient(image_server.url, history=store) as client:
        assert client.image("before", size="32x32", seed=1).history_id is not None
        filler = tiny_disk / "filler"
        with open(filler, "wb", buffering=0) as handle:
            with pytest.raises(OSError):
                while True:
                    handle.write(b"\0" * 4096)
        image = client.image("while the disk is full", size="256x256", seed=2)
        assert image.data.startswith(b"\x89PNG") and (image.width, image.height) == (256, 256)
        assert image.history_id is None and "No space left" in (image.stored.note or "")  # type: ignore[union-attr]
        data, _ = image._repr_mimebundle_()  # still shown, with the reason it is not in the history
        assert "not in the history" in data["text/plain"]
        assert len(store) == 1 and _no_temp_files(store)
        filler.unlink()
        assert client.image("after", size="32x32", seed=3).history_id is not None
    assert assert_every_row_has_its_files(db) == 2
