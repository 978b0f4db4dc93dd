"""Real processes: two writers at once lose nothing; a writer killed mid-write leaves a sound database.

The writers are separate Python processes (``tests/support/history_writer.py``) on one database; the
kill uses the store's test pause, so SIGKILL lands exactly between two steps of a write.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.history import assert_every_row_has_its_files, make_record, png_bytes, run_writer
from vomni_nb._history import HistoryStore

pytestmark = pytest.mark.slow


def _wait_for(path: Path, proc: subprocess.Popen[str], deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"writer exited early ({proc.returncode}): {proc.communicate()[1]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("writer never reached the pause")
        time.sleep(0.01)


@pytest.mark.parametrize("like", [False, True], ids=["fts5", "like"])
def test_two_processes_writing_50_entries_each_at_once(tmp_path: Path, like: bool) -> None:
    db = tmp_path / "history.sqlite3"  # does not exist yet: both writers race to create it too
    go = tmp_path / "go"
    extra = ("--go", str(go), *(("--like",) if like else ()))
    writers = [run_writer(db, name, 50, *extra) for name in ("alpha", "beta")]
    time.sleep(0.5)  # let both open the store; the go file then releases them together
    go.touch()
    for proc in writers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert assert_every_row_has_its_files(db) == 100
    with HistoryStore(db) as store:
        entries = store.search(limit=None)
        prompts = {e.prompt for e in entries}
        assert prompts == {f"{name} {i}: a {'fox' if i % 3 == 0 else 'heron'} in the reeds" for name in ("alpha", "beta") for i in range(50)}
        assert len({e.id for e in entries}) == 100
        assert len(store.search("fox", limit=None)) == 2 * 17  # found whichever writer indexed it
        # The shared PCM content of every fifth entry was stored once for both writers.
        shared = [e for e in entries if len(e.files) == 2]
        assert len(shared) == 20 and len({e.files[1].sha256 for e in shared}) == 10
        assert all(len(store.entries_with_file(e.files[1].sha256)) == 2 for e in shared)


@pytest.mark.parametrize("stage", ["commit", "blob"])
def test_sigkill_mid_write_leaves_a_database_that_opens_and_no_row_without_its_file(tmp_path: Path, stage: str) -> None:
    db = tmp_path / "history.sqlite3"
    ready = tmp_path / "paused"
    proc = run_writer(db, "victim", 4, "--pause", f"{stage}:{ready}")
    _wait_for(ready, proc)
    # The writer is now paused: for "commit" its last row is inserted but not committed (and it holds
    # the write lock); for "blob" its last file sits under a temporary name. Kill it right there.
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert assert_every_row_has_its_files(db) == 3
    with HistoryStore(db) as store:
        assert sorted(e.prompt for e in store.search(limit=None)) == [f"victim {i}: a {a} in the reeds" for i, a in
                                                                      ((0, "fox"), (1, "heron"), (2, "heron"))]
        assert len(store.search("fox")) == 1
        blobs = {p.name for p in store.files_dir.glob("*/*") if not p.name.startswith(".")}
        referenced = {f.path.name for e in store.search(limit=None) for f in e.files}
        if stage == "commit":
            assert len(blobs - referenced) == 1  # the killed entry's file: on disk, unreferenced
        else:
            assert blobs == referenced  # the killed file never got its name
            assert len([p for p in store.files_dir.glob("*/.tmp-*")]) == 1
        # The lock died with the writer: this process can write at once, the same content included.
        entry = store.record(make_record(prompt="after the crash"), files=[png_bytes()])
        assert entry is not None and entry.id == 4  # the killed row's id was never taken
    assert assert_every_row_has_its_files(db) == 4
