"""Issue 14.18: the manager touches only the log files it created, and never writes through a symlink."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from tests.support.sims import free_port
from vomni_nb.errors import ServerManagerError
from vomni_nb.server import ServerManager, launch
from vomni_nb.server.logfiles import is_our_log, new_log_path, prune_logs


def test_pruning_a_custom_log_folder_spares_files_we_did_not_create(tmp_path: Path) -> None:
    unrelated = ["notes.log", "app-1.log", "train-8091.log", "x-8091-20250101-000000-abcdef.log.bak", "README.md"]
    for name in unrelated:
        (tmp_path / name).write_text("the user's")
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("not ours")
    link = tmp_path / "m-8091-20250101-000009-abcdef.log"  # named like ours, but a symlink
    link.symlink_to(secret)
    ours = [tmp_path / f"m-8091-20250101-00000{n}-abcdef.log" for n in range(3)]
    for n, path in enumerate(ours):
        path.write_text("log")
        os.utime(path, (1000 + n, 1000 + n))
    gone = prune_logs(tmp_path, keep=1)
    assert sorted(gone) == ours[:2]
    assert all((tmp_path / name).read_text() == "the user's" for name in unrelated)
    assert link.is_symlink() and secret.read_text() == "not ours"
    assert not is_our_log(link) and is_our_log(ours[2])


def test_a_log_is_created_new_never_through_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "victim.txt"
    target.write_text("precious")
    log_path = new_log_path(tmp_path, "org/model", 8091)
    log_path.symlink_to(target)
    with pytest.raises(FileExistsError):
        launch.spawn_server([sys.executable, "-c", "print('x' * 100)"], env={}, log_path=log_path)
    assert target.read_text() == "precious"
    fresh = new_log_path(tmp_path, "org/model", 8091)
    proc = launch.spawn_server([sys.executable, "-c", "print('hello')"], env={}, log_path=fresh)
    assert proc.wait(30) == 0
    assert fresh.read_text() == "hello\n" and stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_symlinked_log_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "logs").symlink_to(elsewhere)
    manager = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False, default_port=free_port())
    with pytest.raises(ServerManagerError, match="symlink"):
        manager.start("Tongyi-MAI/Z-Image-Turbo", sim=True)
    assert list(elsewhere.iterdir()) == [] and manager.servers == []
