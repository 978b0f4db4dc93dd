"""History: every generation logged to SQLite, its output files kept by content beside it.

``HistoryStore`` is one SQLite file (the user cache dir by default; ``VOMNI_HISTORY=/path`` or the
constructor moves it) plus a folder ``<stem>-files/`` of output files named by their SHA-256.
``VOMNI_HISTORY=off`` or :func:`set_history_enabled` turns recording off everywhere; reading still works.

Rules:

1. One object connects, checks and migrates once; a database or folder we did not write is refused
   with :class:`HistoryError` and left byte for byte as it was (see ``_history_schema``).
2. A row exists only once its files are on disk: :meth:`HistoryStore.record` writes the files
   (fsynced, linked into place) first, then the row, its file links and its search entry in one
   transaction. A crash in between leaves at most an unreferenced file, never a row without its file.
3. Two kernels may write at once: WAL mode, a busy timeout, and ``BEGIN IMMEDIATE`` for every write
   (a deferred transaction that later needs the write lock can fail at once instead of waiting).
4. Failing to record never loses a generation: every failure is a HistoryError whose message says
   what to do; the caller shows the result and the message. A full disk leaves the database intact.
5. PNG outputs are stored carrying their recipe (``parameters`` + ``vomni_nb`` chunks), so a file
   copied out of the store can be rerun on its own. Records never carry secrets (keys are dropped).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from vomni_nb import _history_schema as schema
from vomni_nb._blobs import BlobStore, disk_error, pause_point
from vomni_nb._history_view import HistoryTable, build_table
from vomni_nb._recipes import (
    RECORD_SCHEMA,
    clean_record,
    infotext,
    parse_infotext,
    png_with_recipe,
    png_without_recipe,
    read_recipe,
    sidecar_path,
    write_sidecar,
)
from vomni_nb.errors import HistoryError, InvalidRequestError, redact

__all__ = [
    "KINDS",
    "STATUSES",
    "HistoryStore",
    "Entry",
    "StoredFile",
    "HistoryTable",
    "history",
    "default_store",
    "default_history_path",
    "history_enabled",
    "set_history_enabled",
    "read_recipe",
    "png_with_recipe",
    "png_without_recipe",
    "infotext",
    "parse_infotext",
    "sidecar_path",
    "write_sidecar",
]

ENV = "VOMNI_HISTORY"
KINDS = ("image", "edit", "speech", "chat", "video")
STATUSES = ("ok", "error", "cancelled")
_OFF = {"off", "0", "false", "no", "none"}
_INT64 = (-(2**63), 2**63 - 1)

FileInput = Union[bytes, tuple[bytes, str], str, "os.PathLike[str]"]


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """One output file of an entry, in the content-addressed store."""

    sha256: str
    path: Path
    size: int
    mime: str

    @property
    def exists(self) -> bool:
        return self.path.is_file()


@dataclasses.dataclass(frozen=True, repr=False)
class Entry:
    """One recorded generation, as read back from the database."""

    id: int
    created_at: str
    kind: str
    model: str | None
    server_url: str | None
    prompt: str
    params: Mapping[str, Any]
    seed: int | None
    status: str
    timings: Mapping[str, float]
    metrics: Mapping[str, Any]
    error: str | None
    request_id: str | None
    files: tuple[StoredFile, ...]
    record: Mapping[str, Any]

    def __repr__(self) -> str:
        prompt = self.prompt if len(self.prompt) <= 40 else self.prompt[:39] + "…"
        return (
            f"Entry(#{self.id} {self.kind} {self.status}, model={self.model!r}, seed={self.seed}, "
            f"{len(self.files)} file{'s' * (len(self.files) != 1)}, prompt={prompt!r})"
        )


_enabled = True


def history_enabled() -> bool:
    """Whether generations are recorded: not turned off by ``VOMNI_HISTORY=off`` or :func:`set_history_enabled`."""
    return _enabled and os.environ.get(ENV, "").strip().lower() not in _OFF


def set_history_enabled(enabled: bool) -> None:
    """The global switch (the magics expose it); ``VOMNI_HISTORY=off`` wins over it."""
    global _enabled
    _enabled = bool(enabled)


def default_history_path() -> Path:
    """``$VOMNI_HISTORY`` when it names a path, else ``<user cache dir>/vomni_nb/history/history.sqlite3``."""
    setting = os.environ.get(ENV, "").strip()
    if setting and setting.lower() not in _OFF:
        return Path(setting).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("vomni_nb")) / "history" / "history.sqlite3"


def _database_path(path: str | os.PathLike[str]) -> Path:
    resolved = Path(path).expanduser()
    return resolved / "history.sqlite3" if resolved.is_dir() else resolved


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise HistoryError(f"Cannot record this generation: its {what} is not JSON-safe ({exc}).") from exc


def _loads(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default


def _error_text(error: str | BaseException | None) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return redact(text)[:4000]


def _fts_query(text: str) -> str:
    # Every word as a quoted prefix phrase: user text never reaches FTS5's query syntax.
    words = [w for w in text.split() if any(c.isalnum() for c in w)]
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class HistoryStore:
    """The history database and its file store. ``HistoryStore()`` uses :func:`default_history_path`.

    ``fts``: None uses SQLite FTS5 for search when this build has it, False always uses LIKE, True
    requires FTS5. ``timeout``: seconds to wait for another kernel's write to finish.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, fts: bool | None = None, timeout: float = 30.0
    ) -> None:
        self.path = _database_path(path if path is not None else default_history_path())
        self.files_dir = self.path.with_name(f"{self.path.stem}-files")
        self._lock = threading.RLock()
        self._blobs = BlobStore(self.files_dir)
        if fts and not schema.fts_available():
            raise HistoryError("This Python's SQLite has no FTS5; use HistoryStore(fts=None) to search with LIKE.")
        self._blobs.check()
        if not schema.is_ours(self.path):
            schema.create(self.path, timeout=timeout)
            schema.is_ours(self.path)  # whoever won the race to create it, it must be ours
        try:
            self._db = schema.connect(self.path, timeout=timeout)
        except sqlite3.Error as exc:
            raise self._sqlite_error(exc, "opening") from exc
        try:
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise HistoryError(
                    f"The history database {self.path} is damaged ({check}); it was left as it was. Move it "
                    "away (a new one is made in its place) or point VOMNI_HISTORY elsewhere.",
                    path=str(self.path),
                )
            schema.migrate(self._db, self.path)
            self.fts = bool(schema.fts_available() if fts is None else fts)
            if self.fts:
                schema.ensure_fts(self._db)
            self._blobs.ensure()
        except sqlite3.Error as exc:
            self._db.close()
            raise self._sqlite_error(exc, "opening") from exc
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"HistoryStore({str(self.path)!r}, search={'FTS5' if self.fts else 'LIKE'})"

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    def _sqlite_error(self, exc: sqlite3.Error, doing: str) -> HistoryError:
        message = str(exc)
        if "full" in message:
            return disk_error(OSError(28, "No space left on device"), self.path, f"{doing} the history database")
        if "locked" in message or "busy" in message:
            return HistoryError(
                f"The history database {self.path} stayed locked by another process; nothing was recorded. "
                "Try again, or pass a longer timeout.",
                path=str(self.path),
            )
        if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in message or "not a database" in message):
            return HistoryError(
                f"The history database {self.path} is damaged ({message}); it was left as it was. Move it "
                "away (a new one is made in its place) or point VOMNI_HISTORY elsewhere.",
                path=str(self.path),
            )
        return HistoryError(f"The history database {self.path} failed while {doing}: {message}.", path=str(self.path))

    # --- writing ---------------------------------------------------------------------------------

    def record(
        self,
        record: Mapping[str, Any],
        *,
        files: Sequence[FileInput] = (),
        status: str = "ok",
        error: str | BaseException | None = None,
        metrics: Mapping[str, Any] | None = None,
        embed_recipe: bool = True,
    ) -> Entry | None:
        """Log one generation and store its output files; None when history is turned off.

        ``record`` is ``Provenance.to_record()`` (unknown keys are kept in the record JSON). ``files``
        are bytes, ``(bytes, suffix)`` for content that does not say what it is (raw PCM), or paths.
        Raises HistoryError when it cannot record; nothing is half-written then.
        """
        if not history_enabled():
            return None
        rec = self._checked(record, status)
        if metrics is not None:
            rec["metrics"] = dict(metrics)
        record_json = _dumps(rec, "record")
        payloads = [self._payload(item) for item in files]
        if embed_recipe:
            payloads = [(self._with_recipe(data, rec), hint) for data, hint in payloads]
        blobs = [self._blobs.put(data, hint) for data, hint in payloads]
        seed = rec.get("seed")
        values = {
            "created_at": str(rec.get("created_at") or _now()),
            "recorded_at": _now(),
            "kind": rec["kind"],
            "model": rec.get("model"),
            "server_url": rec.get("server_url"),
            "prompt": str(rec.get("prompt") or ""),
            "params": _dumps(rec.get("params") or {}, "params"),
            "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) and _INT64[0] <= seed <= _INT64[1] else None,
            "status": status,
            "timings": _dumps(rec.get("timings") or {}, "timings"),
            "metrics": _dumps(rec.get("metrics") or {}, "metrics"),
            "error": _error_text(error),
            "request_id": rec.get("request_id"),
            "record": record_json,
        }
        with self._lock:
            try:
                entry_id = self._insert(values, blobs)
            except sqlite3.Error as exc:
                schema.rollback(self._db)
                raise self._sqlite_error(exc, "writing to") from exc
            except BaseException:
                schema.rollback(self._db)
                raise
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    def _checked(self, record: Mapping[str, Any], status: str) -> dict[str, Any]:
        if not isinstance(record, Mapping):
            raise HistoryError(f"Cannot record this generation: the record is a {type(record).__name__}, not a dict.")
        rec = clean_record(record)
        if rec.get("schema", RECORD_SCHEMA) != RECORD_SCHEMA:
            raise HistoryError(f"Cannot record this generation: unknown record schema {rec.get('schema')!r}.")
        rec.setdefault("schema", RECORD_SCHEMA)
        if rec.get("kind") not in KINDS:
            raise HistoryError(f"Cannot record this generation: kind {rec.get('kind')!r} is not one of {', '.join(KINDS)}.")
        if status not in STATUSES:
            raise HistoryError(f"Cannot record this generation: status {status!r} is not one of {', '.join(STATUSES)}.")
        if not isinstance(rec.get("params") or {}, Mapping):
            raise HistoryError("Cannot record this generation: its params are not a dict.")
        return rec

    @staticmethod
    def _payload(item: FileInput) -> tuple[bytes, str]:
        if isinstance(item, bytes):
            return item, ""
        if isinstance(item, tuple):
            return bytes(item[0]), str(item[1])
        path = Path(item).expanduser()
        try:
            return path.read_bytes(), path.suffix
        except OSError as exc:
            raise InvalidRequestError(f"Cannot read output file {path}: {exc.strerror or exc}.") from exc

    @staticmethod
    def _with_recipe(data: bytes, rec: Mapping[str, Any]) -> bytes:
        if not data.startswith(b"\x89PNG"):
            return data
        try:
            return png_with_recipe(data, rec)
        except InvalidRequestError:
            return data  # a damaged PNG is kept as the server sent it

    def _insert(self, values: dict[str, Any], blobs: Sequence[Any]) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        for blob in blobs:
            db.execute(
                "INSERT OR IGNORE INTO files (sha256, relpath, size, mime) VALUES (?, ?, ?, ?)",
                (blob.sha256, blob.relpath, blob.size, blob.mime),
            )
        columns = ", ".join(values)
        cursor = db.execute(
            f"INSERT INTO entries ({columns}) VALUES ({', '.join('?' for _ in values)})", tuple(values.values())
        )
        entry_id = int(cursor.lastrowid or 0)
        db.executemany(
            "INSERT INTO entry_files (entry_id, position, sha256) VALUES (?, ?, ?)",
            [(entry_id, position, blob.sha256) for position, blob in enumerate(blobs)],
        )
        if self.fts:
            db.execute("INSERT INTO entries_fts (rowid, prompt) VALUES (?, ?)", (entry_id, values["prompt"]))
        pause_point("commit")
        db.execute("COMMIT")
        return entry_id

    # --- reading ---------------------------------------------------------------------------------

    def get(self, entry_id: int) -> Entry | None:
        """The entry with this id, or None."""
        found = self._entries("WHERE id = ?", [int(entry_id)])
        return found[0] if found else None

    def search(
        self, text: str | None = None, *, kind: str | None = None, model: str | None = None, limit: int | None = 20
    ) -> tuple[Entry, ...]:
        """Newest first: entries whose prompt has every word of ``text``, of ``kind``, of ``model``.

        ``model`` matches the full id or its last part (``"Z-Image-Turbo"`` finds ``"Tongyi-MAI/Z-Image-Turbo"``).
        """
        if kind is not None and kind not in KINDS:
            raise InvalidRequestError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}.")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidRequestError(f"limit must be a positive whole number, not {limit!r}.")
        where: list[str] = []
        args: list[Any] = []
        if text and text.strip():
            query = _fts_query(text) if self.fts else ""
            if query:
                where.append("id IN (SELECT rowid FROM entries_fts WHERE entries_fts MATCH ?)")
                args.append(query)
            else:  # no FTS5, or text with no word in it (only punctuation): match it literally
                for word in text.split():
                    where.append("prompt LIKE ? ESCAPE '\\'")
                    args.append(f"%{_like(word)}%")
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if model:
            where.append("(model = ? OR model LIKE ? ESCAPE '\\')")
            args += [model, f"%/{_like(model)}"]
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        if limit is not None:
            clause += f" ORDER BY id DESC LIMIT {int(limit)}"
        else:
            clause += " ORDER BY id DESC"
        return self._entries(clause, args)

    def entries_with_file(self, sha256: str) -> tuple[Entry, ...]:
        """Every entry that produced the file with this SHA-256 (newest first)."""
        return self._entries("WHERE id IN (SELECT entry_id FROM entry_files WHERE sha256 = ?) ORDER BY id DESC", [sha256])

    def path_of(self, sha256: str) -> Path:
        """Where the stored file with this SHA-256 is; HistoryError when the store has no such file."""
        with self._lock:
            row = self._db.execute("SELECT relpath FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        path = self._blobs.path(row[0]) if row else self._blobs.find(sha256)
        if path is None or not path.is_file():
            raise HistoryError(f"No file with SHA-256 {sha256} in {self.files_dir}.", path=str(self.files_dir))
        return path

    def _entries(self, clause: str, args: Sequence[Any]) -> tuple[Entry, ...]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, created_at, kind, model, server_url, prompt, params, seed, status, timings, "
                    f"metrics, error, request_id, record FROM entries {clause}",
                    tuple(args),
                ).fetchall()
                ids = [row[0] for row in rows]
                files: dict[int, list[StoredFile]] = {i: [] for i in ids}
                if ids:
                    for entry_id, sha, relpath, size, mime in self._db.execute(
                        "SELECT ef.entry_id, f.sha256, f.relpath, f.size, f.mime FROM entry_files ef "
                        f"JOIN files f ON f.sha256 = ef.sha256 WHERE ef.entry_id IN ({', '.join('?' for _ in ids)}) "
                        "ORDER BY ef.entry_id, ef.position",
                        ids,
                    ):
                        files[entry_id].append(StoredFile(sha, self._blobs.path(relpath), size, mime))
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc, "reading") from exc
        return tuple(
            Entry(
                id=row[0], created_at=row[1], kind=row[2], model=row[3], server_url=row[4], prompt=row[5],
                params=_loads(row[6], {}), seed=row[7], status=row[8], timings=_loads(row[9], {}),
                metrics=_loads(row[10], {}), error=row[11], request_id=row[12], files=tuple(files[row[0]]),
                record=_loads(row[13], {}),
            )
            for row in rows
        )


_stores: dict[Path, HistoryStore] = {}
_stores_lock = threading.Lock()


def _shared_store(path: str | os.PathLike[str] | None) -> HistoryStore:
    key = _database_path(path if path is not None else default_history_path())
    with _stores_lock:
        if key not in _stores:
            _stores[key] = HistoryStore(key)
        return _stores[key]


def default_store(path: str | os.PathLike[str] | None = None) -> HistoryStore | None:
    """The store this kernel records into (one per path, opened once); None when history is off."""
    if not history_enabled():
        return None
    return _shared_store(path)


def history(
    n: int = 20,
    search: str | None = None,
    kind: str | None = None,
    model: str | None = None,
    store: HistoryStore | None = None,
) -> HistoryTable:
    """The last ``n`` generations (matching ``search``, ``kind``, ``model``) as a table that displays itself.

    Image rows carry small JPEG thumbnails; the table is static HTML plus text, so it survives saving
    and nbconvert. With history off and no database yet, the table is empty (nothing is created).
    """
    if store is None:
        path = _database_path(default_history_path())
        if not history_enabled() and not path.exists():
            return build_table((), source=str(path), query="history is off")
        store = _shared_store(path)
    entries = store.search(search, kind=kind, model=model, limit=n)
    described = ", ".join(
        part for part in (f"matching {search!r}" if search else "", f"kind {kind}" if kind else "",
                          f"model {model}" if model else "") if part
    )
    return build_table(entries, source=str(store.path), query=described)
