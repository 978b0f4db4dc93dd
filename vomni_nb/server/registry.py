"""The registry file: every server a vomni_nb kernel started, so a later kernel can find orphans.

One JSON file (``servers.json``) under the user cache dir, or ``$VOMNI_REGISTRY_DIR``. Two kernels
may write at once: every change holds an exclusive ``fcntl`` lock on a side file and writes the
whole file through a temporary file and ``os.replace``, so a reader never sees half a file. The
file may hold an API key of a kept server (the next kernel needs it to use that server), so it is
created readable by its owner only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

__all__ = ["Entry", "Registry", "default_registry_dir", "process_alive", "process_started"]

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


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
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def process_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` is alive and is still the process that started at ``started`` (pids get reused)."""
    now = process_started(pid)
    if now is None:
        return False
    return started is None or abs(now - started) < 0.5


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
    def from_json(cls, data: dict[str, Any]) -> Entry:
        names = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["args"] = tuple(values.get("args", ()))
        return cls(**values)


class Registry:
    """Read and change ``servers.json`` under an exclusive lock."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_registry_dir()
        self.path = self.directory / "servers.json"
        self._lock_path = self.directory / "servers.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> list[Entry]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        entries = []
        for item in raw.get("servers", []) if isinstance(raw, dict) else []:
            try:
                entries.append(Entry.from_json(item))
            except (TypeError, ValueError):
                continue  # a row from another version; skip it rather than fail every start
        return entries

    def _write(self, entries: list[Entry]) -> None:
        payload = json.dumps({"version": 1, "servers": [entry.to_json() for entry in entries]}, indent=1)
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
            return self._read()

    def change(self, edit: Callable[[list[Entry]], list[Entry]]) -> list[Entry]:
        """Apply ``edit`` to the entry list under the lock and save the result."""
        with self._locked():
            entries = edit(self._read())
            self._write(entries)
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
