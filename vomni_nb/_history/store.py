"""History: every generation logged to SQLite, its output files kept by content beside it.

``HistoryStore`` is one SQLite file (the user cache dir by default; ``VOMNI_HISTORY=/path`` or the
constructor moves it) plus a folder ``<stem>-files/`` of output files named by their SHA-256.
``VOMNI_HISTORY=off`` or :func:`set_history_enabled` turns recording off everywhere; reading still works.

Rules:

1. One object connects, checks and migrates once; a database or folder we did not write is refused
   with :class:`HistoryError` and left byte for byte as it was (see ``schema``).
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

import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from vomni_nb._history import schema
from vomni_nb._history.blobs import BlobStore, disk_error, pause_point
from vomni_nb._history.rows import (
    COLUMNS,
    KINDS,
    STATUSES,
    Entry,
    StoredFile,
    checked_record,
    entry_from_row,
    row_values,
    search_clause,
)
from vomni_nb._history.view import HistoryTable, build_table
from vomni_nb._recipes import (
    infotext,
    parse_infotext,
    png_with_recipe,
    png_without_recipe,
    read_recipe,
    sidecar_path,
    write_sidecar,
)
from vomni_nb.errors import HistoryError, InvalidRequestError

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
_OFF = {"off", "0", "false", "no", "none"}

FileInput = Union[bytes, tuple[bytes, str], str, "os.PathLike[str]"]


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
        inputs: Sequence[FileInput] = (),
    ) -> Entry | None:
        """Log one generation and store its output files; None when history is turned off.

        ``record`` is ``Provenance.to_record()`` (unknown keys are kept in the record JSON). ``files``
        are bytes, ``(bytes, suffix)`` for content that does not say what it is (raw PCM), or paths.
        ``inputs`` (same forms) are the media the request sent (an edit's picture), stored so that a
        rerun can send them again; the record lists them under ``"inputs"`` (see :meth:`inputs_of`).
        Raises HistoryError when it cannot record; nothing is half-written then.
        """
        if not history_enabled():
            return None
        rec = checked_record(record, status, metrics)
        sent = [self._blobs.put(*self._payload(item)) for item in inputs]
        if sent:  # before the recipes are embedded: a file copied out of the store names what to send again
            rec["inputs"] = [{"sha256": blob.sha256, "size": blob.size, "mime": blob.mime} for blob in sent]
        payloads = [self._payload(item) for item in files]
        if embed_recipe:
            payloads = [(self._with_recipe(data, rec), hint) for data, hint in payloads]
        blobs = [self._blobs.put(data, hint) for data, hint in payloads]
        values = row_values(rec, status, error)
        with self._lock:
            try:
                entry_id = self._insert(values, blobs, sent)
            except sqlite3.Error as exc:
                schema.rollback(self._db)
                raise self._sqlite_error(exc, "writing to") from exc
            except BaseException:
                schema.rollback(self._db)
                raise
        entry = self.get(entry_id)
        assert entry is not None
        return entry

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

    def _insert(self, values: dict[str, Any], blobs: Sequence[Any], inputs: Sequence[Any] = ()) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        for blob in [*blobs, *inputs]:
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
        clause, args = search_clause(text, kind, model, limit, fts=self.fts)
        return self._entries(clause, args)

    def entries_with_file(self, sha256: str) -> tuple[Entry, ...]:
        """Every entry that produced the file with this SHA-256 (newest first)."""
        return self._entries("WHERE id IN (SELECT entry_id FROM entry_files WHERE sha256 = ?) ORDER BY id DESC", [sha256])

    def inputs_of(self, entry: Entry) -> tuple[StoredFile, ...]:
        """The media ``entry``'s request sent (an edit's picture), as stored; HistoryError when one is missing."""
        listed = entry.record.get("inputs")
        items = [item for item in listed if isinstance(item, Mapping)] if isinstance(listed, list) else []
        return tuple(StoredFile(str(item.get("sha256")), self.path_of(str(item.get("sha256"))), int(item.get("size") or 0),
                                str(item.get("mime") or "")) for item in items)

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
                rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM entries {clause}", tuple(args)).fetchall()
                files: dict[int, list[StoredFile]] = {row[0]: [] for row in rows}
                for entry_id, sha, relpath, size, mime in self._db.execute(
                    "SELECT ef.entry_id, f.sha256, f.relpath, f.size, f.mime FROM entry_files ef "
                    f"JOIN files f ON f.sha256 = ef.sha256 WHERE ef.entry_id IN (SELECT id FROM entries {clause}) "
                    "ORDER BY ef.entry_id, ef.position",
                    tuple(args),
                ):
                    files[entry_id].append(StoredFile(sha, self._blobs.path(relpath), size, mime))
            except sqlite3.Error as exc:
                raise self._sqlite_error(exc, "reading") from exc
        return tuple(entry_from_row(row, files[row[0]]) for row in rows)


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
