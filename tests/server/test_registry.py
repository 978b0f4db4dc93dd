"""The registry file: entries round-trip, file is private, two writers at once lose nothing."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest

from vomni_nb.errors import ServerManagerError
from vomni_nb.server.registry import Entry, Registry, process_alive, process_started


def _entry(n: int, **changes: object) -> Entry:
    values: dict[str, object] = dict(
        id=f"e{n}", pid=os.getpid(), pgid=os.getpgid(0), pid_started=process_started(os.getpid()) or 0.0,
        host="127.0.0.1", port=9000 + n, model=f"m/{n}", kind="sim", args=("--x", "1"), identity="abc",
        owner_pid=os.getpid(), owner_started=process_started(os.getpid()) or 0.0, started_at=time.time(),
        keep=False, log_path="/tmp/x.log", api_key=None,
    )
    values.update(changes)
    return Entry(**values)  # type: ignore[arg-type]


def test_round_trip_and_private_file(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.add(_entry(1, api_key="secret"))
    reg.add(_entry(2))
    assert [e.id for e in reg.entries()] == ["e1", "e2"]
    assert reg.entries()[0].args == ("--x", "1")
    assert stat.S_IMODE(reg.path.stat().st_mode) == 0o600
    reg.remove("e1")
    assert [e.id for e in reg.entries()] == ["e2"]


def test_dead_entries_are_pruned(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.add(_entry(1))
    reg.add(_entry(2, pid_started=1.0))  # our pid, but another process's start time: a reused pid
    assert [e.id for e in reg.prune_dead()] == ["e1"]


def test_a_corrupt_file_reads_as_empty(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    reg.path.write_text("{not json")
    assert reg.entries() == []
    reg.add(_entry(1))
    assert len(reg.entries()) == 1


def _writer(directory: str, base: int) -> None:
    reg = Registry(Path(directory))
    for n in range(base, base + 15):
        reg.add(_entry(n))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), base)) for base in (0, 100, 200, 300)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert len(Registry(tmp_path).entries()) == 60


def test_process_alive_checks_start_time() -> None:
    me = os.getpid()
    assert process_alive(me, process_started(me))
    assert not process_alive(me, 12.0)


def test_an_entry_repr_never_shows_the_key() -> None:
    assert "sekrit" not in repr(_entry(1, api_key="sekrit")) and "api_key='***'" not in repr(_entry(1))


# ---- issue 14.18: the registry's directory, lock and file -----------------------------------------


def test_a_too_open_registry_directory_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "reg"
    directory.mkdir()
    os.chmod(directory, 0o777)
    Registry(directory).add(_entry(1))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_a_symlinked_lock_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    directory = tmp_path / "reg"
    directory.mkdir(mode=0o700)
    target = tmp_path / "bashrc"
    (directory / "servers.lock").symlink_to(target)  # a target that does not exist yet: O_CREAT would make it
    with pytest.raises(ServerManagerError, match="symlink"):
        Registry(directory).entries()
    assert not target.exists()


def test_a_symlinked_registry_file_is_not_read(tmp_path: Path) -> None:
    directory = tmp_path / "reg"
    directory.mkdir(mode=0o700)
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps({"version": 1, "servers": [_entry(1).to_json()]}))
    (directory / "servers.json").symlink_to(planted)
    reg = Registry(directory)
    assert reg.entries() == [] and "symlink" in reg.problems[0]
    reg.add(_entry(2))  # the next change writes a real file in the link's place; the target stays as it was
    assert not reg.path.is_symlink() and [e.id for e in reg.entries()] == ["e2"]
    assert json.loads(planted.read_text())["servers"][0]["id"] == "e1"


def test_a_registry_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "reg"
    directory.mkdir(mode=0o700)
    try:
        os.chown(directory, os.getuid() + 4242, -1)
    except PermissionError:
        pytest.skip("only root can give a directory to another user here")
    with pytest.raises(ServerManagerError, match="another user"):
        Registry(directory).entries()


def test_a_malformed_row_is_skipped_reported_and_kept(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.add(_entry(1))
    rows = json.loads(reg.path.read_text())["servers"] + [{**_entry(2).to_json(), "pgid": 0}, ["junk"]]
    reg.path.write_text(json.dumps({"version": 1, "servers": rows}))
    assert [e.id for e in reg.entries()] == ["e1"]
    assert [p.split(": ", 1)[1] for p in reg.problems] == ["pgid is 0", "a row must be a JSON object"]
    reg.remove("e1")
    assert json.loads(reg.path.read_text())["servers"] == rows[1:]  # left as they were, never acted on
