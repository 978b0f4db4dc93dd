"""The registry file: every server a vomni_nb kernel started, so a later kernel can find orphans.

One JSON file (``servers.json``) under the user cache dir, or ``$VOMNI_REGISTRY_DIR``. Two kernels
may write at once: every change holds an exclusive ``fcntl`` lock on a side file and writes the
whole file through a temporary file and ``os.replace``, so a reader never sees half a file. The
file may hold an API key of a kept server (the next kernel needs it to use that server), so it is
created readable by its owner only.

Rules, because the manager sends signals on what this file says:
1. A row is trusted only when every field has the type and range we write (``Entry.from_json``);
   any other row is skipped (never acted on), kept in the file as it is, and reported
   (``Registry.problems`` and a warning in the ``vomni_nb.server`` log).
2. The directory must be ours: owned by this user, not a symlink; a mode open to others is
   tightened to 0700. The lock and the file are never followed through a symlink.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from vomni_nb.errors import ServerManagerError, redact

__all__ = ["Entry", "Registry", "default_registry_dir", "process_alive", "process_started", "secure_directory"]

log = logging.getLogger(__name__)

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def default_registry_dir() -> Path:
    override = os.environ.get("VOMNI_REGISTRY_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("vomni_nb")) / "servers"


def process_started(pid: int) -> float | None:
    """The start time of ``pid`` (psutil's create_time), or None when it is gone or a zombie."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(proc.create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def process_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` is alive and is still the process that started at ``started`` (pids get reused)."""
    now = process_started(pid)
    if now is None:
        return False
    return started is None or abs(now - started) < 0.5


def secure_directory(directory: Path, *, tighten: bool = True) -> None:
    """Create ``directory`` (0700) or check an existing one: a real directory owned by us, not a symlink.

    ``tighten``: an existing directory that others may read or write is set to 0700 (the registry
    holds API keys of kept servers; a writable one lets others plant rows).
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(directory)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise ServerManagerError(f"{directory} is a symlink or not a directory; vomni_nb keeps its server "
                                 "registry and logs only in a real directory of its own (set VOMNI_REGISTRY_DIR).")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise ServerManagerError(f"{directory} belongs to another user; vomni_nb keeps its server registry and "
                                 "logs only in a directory of its own (set VOMNI_REGISTRY_DIR).")
    if tighten and stat.S_IMODE(info.st_mode) & 0o077:
        log.info("tightening the mode of %s from %o to 700", directory, stat.S_IMODE(info.st_mode))
        os.chmod(directory, 0o700)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One launched server as the registry records it."""

    id: str
    pid: int
    pgid: int
    pid_started: float
    host: str
    port: int
    model: str
    kind: str
    args: tuple[str, ...]
    identity: str
    owner_pid: int
    owner_started: float
    started_at: float
    keep: bool
    log_path: str
    api_key: str | None = None

    def __repr__(self) -> str:
        # Never the key (a kept server's key sits in the file, not in reprs).
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name != "api_key")
        return f"Entry({shown}, api_key={'***' if self.api_key else None})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        return process_alive(self.pid, self.pid_started)

    def owner_alive(self) -> bool:
        return process_alive(self.owner_pid, self.owner_started)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["args"] = list(self.args)
        return data

    @classmethod
    def from_json(cls, data: object) -> Entry:
        """The entry a row describes; ValueError naming the first field that is not as we write it."""
        if not isinstance(data, dict):
            raise ValueError("a row must be a JSON object")
        values = {name: _checked(name, data.get(name)) for name in _FIELDS}
        values["args"] = tuple(values["args"])
        return cls(**values)


def _pid(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 < value < 1 << 22  # 0, 1 (init): never


def _time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 4096 and "\x00" not in value


_FIELDS: dict[str, Callable[[object], bool]] = {
    "id": _text, "pid": _pid, "pgid": _pid, "pid_started": _time,
    "host": lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", v) is not None,
    "port": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536,
    "model": _text, "kind": lambda v: v in ("sim", "vllm"),
    "args": lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v),
    "identity": _text, "owner_pid": _pid, "owner_started": _time, "started_at": _time,
    "keep": lambda v: isinstance(v, bool), "log_path": lambda v: _text(v) and os.path.isabs(str(v)),
    "api_key": lambda v: v is None or _text(v),
}


def _checked(name: str, value: object) -> Any:
    if not _FIELDS[name](value):
        shown = "missing" if value is None else "not a key" if name == "api_key" else repr(value)[:60]  # never a key
        raise ValueError(f"{name} is {shown}")
    return value


class Registry:
    """Read and change ``servers.json`` under an exclusive lock."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_registry_dir()
        self.path = self.directory / "servers.json"
        self._lock_path = self.directory / "servers.lock"
        self.problems: list[str] = []  # rows skipped by the latest read, in words
        self._reported: set[str] = set()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        secure_directory(self.directory)
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ServerManagerError(f"{self._lock_path} is a symlink; vomni_nb does not follow it. "
                                         "Remove it (a real lock file is made in its place).") from exc
            raise
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read_rows(self) -> list[object]:
        self.problems = []
        try:
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._report(f"{self.path} is a symlink: not read (the next change writes a real file)")
            return []
        with os.fdopen(fd, "rb") as handle:
            try:
                raw = json.loads(handle.read())
            except (ValueError, RecursionError):
                self._report(f"{self.path} is not valid JSON: read as empty")
                return []
        rows = raw.get("servers", []) if isinstance(raw, dict) else []
        return rows if isinstance(rows, list) else []

    def _parse(self, rows: list[object]) -> tuple[list[Entry], list[object]]:
        entries, skipped = [], []
        for number, row in enumerate(rows, 1):
            try:
                entries.append(Entry.from_json(row))
            except ValueError as exc:
                skipped.append(row)
                self._report(f"skipped row {number} of {self.path}: {exc}")
        return entries, skipped

    def report(self, problem: str) -> None:
        """Note a row we will not act on (shown by ``%omni_server list``; warned once per process)."""
        self._report(problem)

    def _report(self, problem: str) -> None:
        self.problems.append(problem)
        if problem not in self._reported:  # once per process, not at every poll
            self._reported.add(problem)
            log.warning("%s", redact(problem))

    def _write(self, entries: list[Entry], skipped: list[object]) -> None:
        # Rows we could not read stay as they were: they may be another version's, and we act on none of them.
        rows = [entry.to_json() for entry in entries] + skipped
        payload = json.dumps({"version": 1, "servers": rows}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".servers-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def entries(self) -> list[Entry]:
        with self._locked():
            return self._parse(self._read_rows())[0]

    def change(self, edit: Callable[[list[Entry]], list[Entry]]) -> list[Entry]:
        """Apply ``edit`` to the entry list under the lock and save the result."""
        with self._locked():
            entries, skipped = self._parse(self._read_rows())
            entries = edit(entries)
            self._write(entries, skipped)
            return entries

    def add(self, entry: Entry) -> None:
        self.change(lambda entries: [e for e in entries if e.id != entry.id] + [entry])

    def remove(self, entry_id: str) -> None:
        self.change(lambda entries: [e for e in entries if e.id != entry_id])

    def replace(self, entry: Entry) -> None:
        self.change(lambda entries: [entry if e.id == entry.id else e for e in entries])

    def prune_dead(self) -> list[Entry]:
        """Drop entries whose server is gone; return the live ones."""
        return self.change(lambda entries: [e for e in entries if e.alive()])
