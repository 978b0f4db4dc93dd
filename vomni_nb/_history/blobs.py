"""The content-addressed store of output files beside the history database.

Layout: ``<root>/<sha[:2]>/<sha><ext>``, where ``sha`` is the SHA-256 of the bytes and ``ext`` is
sniffed from them (``.png``, ``.wav``, ``.mp4``, ...).

Rules:

1. A file appears under its name only when complete: it is written to a temporary name in the same
   folder, fsynced, then hard-linked to its name, and the folder is fsynced. ``link`` fails when the
   name exists, so nothing is ever overwritten, not even by two processes racing with the same bytes.
2. Identical content is stored once: when the name exists, nothing is written.
3. The folder carries a marker file. A non-empty folder without it is not ours and is refused with
   :class:`HistoryError`; we never write into it.
4. Every OS error becomes a :class:`HistoryError` that names the folder and says what to do; a
   full disk (ENOSPC, EDQUOT) says so plainly. The temporary file is removed on the way out.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import tempfile
import time
from pathlib import Path

from vomni_nb.errors import HistoryError

__all__ = ["Blob", "BlobStore", "sniff", "pause_point", "disk_error"]

MARKER = ".vomni_nb-files"
_MARKER_TEXT = b"Output files of a vomni_nb history database, named by their SHA-256. Do not edit.\n"
_TEMP_PREFIX = ".tmp-"
PAUSE_ENV = "VOMNI_HISTORY_TEST_PAUSE"

_MAGIC: tuple[tuple[int, bytes, str, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", ".png", "image/png"),
    (0, b"\xff\xd8\xff", ".jpg", "image/jpeg"),
    (0, b"GIF8", ".gif", "image/gif"),
    (0, b"fLaC", ".flac", "audio/flac"),
    (0, b"OggS", ".ogg", "audio/ogg"),
    (0, b"ID3", ".mp3", "audio/mpeg"),
    (0, b"\xff\xfb", ".mp3", "audio/mpeg"),
    (0, b"\xff\xf3", ".mp3", "audio/mpeg"),
    (0, b"\x1a\x45\xdf\xa3", ".webm", "video/webm"),
    (4, b"ftyp", ".mp4", "video/mp4"),
)
_HINTS = {
    ".pcm": "audio/L16", ".wav": "audio/wav", ".json": "application/json", ".txt": "text/plain",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
    ".mp3": "audio/mpeg", ".mp4": "video/mp4", ".aac": "audio/aac", ".opus": "audio/ogg",
}


def sniff(data: bytes, hint: str = "") -> tuple[str, str]:
    """(extension, MIME type) of ``data``, from its first bytes; ``hint`` (".pcm", "pcm") when they say nothing."""
    if data[:4] == b"RIFF" and data[8:12] in (b"WAVE", b"WEBP"):
        return (".wav", "audio/wav") if data[8:12] == b"WAVE" else (".webp", "image/webp")
    for offset, magic, ext, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return ext, mime
    suffix = ("." + hint.lstrip(".")).lower() if hint else ""
    if suffix in _HINTS:
        return suffix, _HINTS[suffix]
    return ".bin", "application/octet-stream"


def disk_error(exc: OSError, where: Path, doing: str) -> HistoryError:
    """A HistoryError for an OS error while ``doing`` something in ``where``, with the fix."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HistoryError(
            f"No space left on the device holding {where} while {doing}. Free some space, or move the "
            "history with VOMNI_HISTORY=/other/path (or turn it off with VOMNI_HISTORY=off); the "
            "generation itself is not affected.",
            path=str(where),
        )
    reason = exc.strerror or str(exc)
    return HistoryError(
        f"Could not write to {where} while {doing}: {reason}. Check that the folder is writable, or move "
        "the history with VOMNI_HISTORY=/other/path.",
        path=str(where),
    )


def pause_point(stage: str) -> None:
    """Test hook: with ``VOMNI_HISTORY_TEST_PAUSE=<stage>:<file>``, write ``file`` and wait to be killed.

    It makes the window between two steps of a write deterministic, so a test can SIGKILL a real
    process exactly there. Unset (always, outside tests), it costs one environment lookup.
    """
    setting = os.environ.get(PAUSE_ENV)
    if not setting or not setting.startswith(stage + ":"):
        return
    Path(setting[len(stage) + 1 :]).write_text(str(os.getpid()))
    while True:  # pragma: no cover - the test kills us here
        time.sleep(3600)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder to fsync it; its renames are already durable
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True)
class Blob:
    """One stored file: its SHA-256, its path relative to the store, its size and MIME type."""

    sha256: str
    relpath: str
    size: int
    mime: str


class BlobStore:
    """Files by content under ``root``; see the module docstring for the rules."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check(self) -> None:
        """Refuse a folder we did not make (reads only)."""
        if (self.root / MARKER).is_file():
            return
        if self.root.exists():
            if not self.root.is_dir():
                raise HistoryError(
                    f"{self.root} should be the history's file store but is a file; it was left as it "
                    "was. Move it away or point VOMNI_HISTORY elsewhere.",
                    path=str(self.root),
                )
            if any(self.root.iterdir()):
                raise HistoryError(
                    f"{self.root} is a folder vomni_nb did not write (it has no {MARKER} marker); it was "
                    "left as it was. Point VOMNI_HISTORY at another path.",
                    path=str(self.root),
                )

    def ensure(self) -> None:
        """Create the folder and its marker when missing (after :meth:`check`)."""
        marker = self.root / MARKER
        if marker.is_file():
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return  # another process made it first
        except OSError as exc:
            raise disk_error(exc, self.root, "creating the file store") from exc
        try:
            _write_all(fd, _MARKER_TEXT)
        finally:
            os.close(fd)

    def path(self, relpath: str) -> Path:
        return self.root / relpath

    def find(self, sha256: str) -> Path | None:
        """The stored file with this SHA-256, whatever its extension, or None."""
        shard = self.root / sha256[:2]
        if len(sha256) != 64 or not shard.is_dir():
            return None
        return next((p for p in sorted(shard.glob(sha256 + ".*")) if not p.name.startswith(_TEMP_PREFIX)), None)

    def put(self, data: bytes, hint: str = "") -> Blob:
        """Store ``data`` (once); returns where it is. Raises HistoryError when it cannot be written."""
        sha = hashlib.sha256(data).hexdigest()
        ext, mime = sniff(data, hint)
        relpath = f"{sha[:2]}/{sha}{ext}"
        blob = Blob(sha256=sha, relpath=relpath, size=len(data), mime=mime)
        final = self.root / relpath
        if final.exists():
            return blob
        temp: str | None = None
        try:
            final.parent.mkdir(exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=ext, dir=final.parent)
            try:
                os.fchmod(fd, 0o644)
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            pause_point("blob")
            try:
                os.link(temp, final)
            except FileExistsError:
                pass  # the same bytes arrived from another writer: stored once
            _fsync_dir(final.parent)
        except OSError as exc:
            raise disk_error(exc, self.root, f"saving a {len(data)}-byte output file") from exc
        finally:
            if temp is not None:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
        return blob
