"""Server log files: their names, where they go, and pruning old ones.

Rules: we only ever touch files we created, and we know them by name: ``MODEL-PORT-YYYYmmdd-HHMMSS-xxxxxx.log``
(a random suffix, created with O_EXCL so a planted file or symlink is never written through).
Pruning skips any other file, a symlink, and files of other users, even in a folder the user chose.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import time
from pathlib import Path

from vomni_nb.server.command import log_file_stem

__all__ = ["KEEP_LOGS", "new_log_path", "is_our_log", "may_be_our_log", "prune_logs"]

log = logging.getLogger(__name__)

KEEP_LOGS = 100  # launch logs kept in the log folder; older ones go

_OUR_NAME = re.compile(r"^[A-Za-z0-9._-]{1,80}-\d{1,5}-\d{8}-\d{6}-[0-9a-f]{6}\.log$")


def new_log_path(log_dir: Path, model: str, port: int) -> Path:
    """A fresh log file name in ``log_dir`` (which ``spawn_server`` creates exclusively)."""
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    return log_dir / f"{log_file_stem(model)}-{port}-{stamp}.log"


def is_our_log(path: Path | str) -> bool:
    """Whether ``path`` is a regular file (not a symlink) of this user named as we name server logs."""
    path = Path(path)
    if not _OUR_NAME.match(path.name):
        return False
    try:
        info = os.lstat(path)
    except OSError:
        return False
    owned = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return stat.S_ISREG(info.st_mode) and owned


def may_be_our_log(path: Path | str) -> bool:
    """A registry row's log path: named as ours, and, if it still exists (pruning may have taken it), ours."""
    path = Path(path)
    return bool(_OUR_NAME.match(path.name)) and (is_our_log(path) or not os.path.lexists(path))


def prune_logs(log_dir: Path, keep: int = KEEP_LOGS) -> list[Path]:
    """Delete our oldest logs in ``log_dir`` beyond the newest ``keep``; returns what went."""
    try:
        ours = [path for path in log_dir.iterdir() if is_our_log(path)]
        ours.sort(key=lambda path: os.lstat(path).st_mtime)
    except OSError:
        return []
    gone = []
    for old in ours[:-keep] if keep else ours:
        try:
            old.unlink()
            gone.append(old)
        except OSError:
            pass  # a kept server's log may be open elsewhere; harmless to leave
    if gone:
        log.debug("pruned %d old server logs in %s", len(gone), log_dir)
    return gone
