"""Files vomni-sim keeps (video outputs, uploaded voices): private directories, 0600 files, no symlinks.

The real server writes videos to ``/tmp/storage``. On a shared machine another user can create that
directory first and swap a finished file for a symbolic link to the owner's private files, which
``/content`` would then serve. So vomni-sim's default is a fresh directory from ``mkdtemp`` (unguessable,
0700, removed at exit); a directory given with ``VOMNI_SIM_STORAGE`` must belong to the user and is
tightened to 0700. Files are created with O_EXCL|O_NOFOLLOW and mode 0600, and a file is served only when
it is a regular file of ours.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from vomni_nb.sim import vlog

__all__ = ["StorageError", "prepare", "ensure_private_dir", "write_private", "read_private", "is_our_file", "remove_tree"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class StorageError(OSError):
    """A storage directory that vomni-sim refuses to use; the message says what to do."""


def _owner_matches(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (0700) or check it: a real directory of ours, tightened to 0700 if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise StorageError(f"{path} is not a directory (a symbolic link?); choose another path for vomni-sim's files.")
    if not _owner_matches(st):
        raise StorageError(
            f"{path} belongs to another user (uid {st.st_uid}); vomni-sim will not keep files there. "
            "Unset VOMNI_SIM_STORAGE for a private directory, or point it at a directory of your own."
        )
    if st.st_mode & 0o077 and hasattr(os, "getuid"):
        os.chmod(path, 0o700)
        vlog.warning(f"Made {path} private (mode 0700); it was {stat.filemode(st.st_mode)}.", where="storage.py:1")


def prepare(directory: Path | None) -> tuple[Path, bool]:
    """The video directory, ready for use, and whether vomni-sim made it (then it is removed at exit)."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="vomni-sim-videos-")), True
    ensure_private_dir(directory)
    return directory, False


def write_private(path: Path, data: bytes) -> None:
    """A new file, 0600; fails if anything (a file, a planted symlink) already has that name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def read_private(path: Path) -> bytes:
    """A regular file's bytes, never through a symbolic link."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return source.read()


def is_our_file(path: Path) -> bool:
    """True for a regular file (not a symlink) owned by this user: the only kind vomni-sim serves."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and _owner_matches(st)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
