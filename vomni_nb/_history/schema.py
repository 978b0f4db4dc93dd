"""The history database's file: telling ours from anyone else's, creating it, migrating it.

Rules:

1. Ours means: a SQLite file whose header carries our ``application_id``. We read the 100-byte
   header ourselves before SQLite opens anything, so a file that is not ours (another program's
   database, a text file, an empty file, garbage) is refused with :class:`HistoryError` and never
   touched: not opened, not migrated, not journaled.
2. A new database is built complete under a temporary name (application id, every migration, WAL
   mode) and hard-linked into place; ``link`` fails if the name is taken, so two kernels creating it
   at once both end up using the one that won, and nobody ever sees half a database.
3. The schema is an append-only list of named migrations (llm's pattern), recorded in
   ``_vomni_migrations``. A fix is a new migration, never an edit of an old one. A database that lists
   a migration we do not know was written by a newer vomni_nb and is refused, not guessed at.
4. Full-text search over prompts is an FTS5 index *outside* the migration list: it is derived data,
   and whether it can exist depends on the SQLite build reading the file. A build with FTS5 creates it
   when missing and rebuilds it when rows were added by a build without (the row counts differ;
   rows are never deleted); a build without FTS5 leaves it alone and searches with LIKE.
"""

from __future__ import annotations

import datetime
import functools
import os
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from vomni_nb._history.blobs import disk_error
from vomni_nb.errors import HistoryError

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "connect",
    "create",
    "ensure_fts",
    "fts_available",
    "is_ours",
    "migrate",
    "rollback",
]

APPLICATION_ID = 0x766F6D6E  # "vomn"
_SQLITE_MAGIC = b"SQLite format 3\0"
_TABLE = "_vomni_migrations"

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def _migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@_migration
def m001_entries(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE entries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: an id is never reused
            created_at TEXT NOT NULL,              -- when the generation was made (ISO 8601)
            recorded_at TEXT NOT NULL,             -- when this row was written (UTC, ISO 8601)
            kind TEXT NOT NULL,                    -- image | edit | speech | chat | video
            model TEXT,
            server_url TEXT,
            prompt TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',     -- every request parameter, JSON
            seed INTEGER,
            status TEXT NOT NULL,                  -- ok | error | cancelled
            timings TEXT NOT NULL DEFAULT '{}',    -- durations in seconds, JSON
            metrics TEXT NOT NULL DEFAULT '{}',    -- the server's metrics, JSON
            error TEXT,
            request_id TEXT,
            record TEXT NOT NULL                   -- the whole provenance record, JSON
        )"""
    )
    db.execute("CREATE INDEX entries_kind ON entries (kind, id)")
    db.execute("CREATE INDEX entries_model ON entries (model, id)")


@_migration
def m002_output_files(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE files (
            sha256 TEXT PRIMARY KEY,
            relpath TEXT NOT NULL,                 -- under the file store: <sha[:2]>/<sha><ext>
            size INTEGER NOT NULL,
            mime TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE entry_files (
            entry_id INTEGER NOT NULL REFERENCES entries (id),
            position INTEGER NOT NULL,
            sha256 TEXT NOT NULL REFERENCES files (sha256),
            PRIMARY KEY (entry_id, position)
        )"""
    )
    db.execute("CREATE INDEX entry_files_sha256 ON entry_files (sha256)")


def _foreign(path: Path, what: str) -> HistoryError:
    return HistoryError(
        f"{path} is {what}, not a vomni_nb history; it was left as it was. Point VOMNI_HISTORY at another "
        "path (or move the file away) and try again.",
        path=str(path),
    )


def is_ours(path: Path) -> bool:
    """False when ``path`` does not exist; True when it is our database; HistoryError for anything else."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        raise _foreign(path, "a folder") from None
    except OSError as exc:
        raise HistoryError(f"Cannot read the history database {path}: {exc.strerror or exc}.", path=str(path)) from exc
    if not header:
        raise _foreign(path, "an empty file")
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise _foreign(path, "not a SQLite database (another kind of file, or a damaged one)")
    (application_id,) = struct.unpack(">I", header[68:72])
    if application_id != APPLICATION_ID:
        raise _foreign(path, "another program's SQLite database")
    if header[18:20] != b"\x02\x02":  # every database we make is in WAL mode from its first byte
        raise _foreign(path, "a SQLite database with vomni_nb's mark that vomni_nb did not make (not in WAL mode)")
    return True


def connect(path: Path, *, timeout: float) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN IMMEDIATE ourselves) with WAL and a busy timeout."""
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed row survives a power cut too; its files were fsynced before it.
        db.execute("PRAGMA synchronous = FULL")
    except BaseException:
        db.close()
        raise
    return db


def _applied(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute(f"SELECT name FROM {_TABLE} ORDER BY rowid")]


def migrate(db: sqlite3.Connection, path: Path, migrations: Sequence[tuple[str, Migration]] = MIGRATIONS) -> list[str]:
    """Apply the migrations ``db`` lacks, each with its record in one transaction; returns their names."""
    known = [name for name, _ in migrations]
    try:
        applied = _applied(db)
    except sqlite3.OperationalError as exc:
        raise HistoryError(
            f"{path} carries vomni_nb's mark but has no {_TABLE} table; it was left as it was. Move it away "
            "or point VOMNI_HISTORY elsewhere.",
            path=str(path),
        ) from exc
    unknown = [name for name in applied if name not in known]
    if unknown:
        raise HistoryError(
            f"{path} was written by a newer vomni_nb (it has migration {unknown[0]!r}); it was left as it "
            "was. Upgrade vomni_nb, or point VOMNI_HISTORY at another path.",
            path=str(path),
        )
    if len(applied) == len(known):
        return []
    done: list[str] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        applied = _applied(db)  # another kernel may have migrated while we waited for the lock
        for name, step in migrations:
            if name in applied:
                continue
            step(db)
            db.execute(f"INSERT INTO {_TABLE} (name, applied_at) VALUES (?, ?)", (name, _now()))
            done.append(name)
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise
    return done


def rollback(db: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (SQLite ends some on its own, e.g. after SQLITE_FULL)."""
    if db.in_transaction:
        db.execute("ROLLBACK")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def create(path: Path, *, timeout: float, migrations: Sequence[tuple[str, Migration]] = MIGRATIONS) -> None:
    """Make a new database at ``path`` unless one appeared meanwhile (see rule 2)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise disk_error(exc, path.parent, "creating the history database") from exc
    temp = Path(temp_name)
    try:
        db = sqlite3.connect(temp, timeout=timeout, isolation_level=None)
        try:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"CREATE TABLE {_TABLE} (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            migrate(db, temp, migrations)
            db.execute("PRAGMA journal_mode = WAL")  # persistent: stored in the file header
        finally:
            db.close()
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another kernel created it first; we use theirs
    except sqlite3.OperationalError as exc:
        if "full" in str(exc):
            raise disk_error(OSError(28, "No space left on device"), path.parent, "creating the history database") from exc
        raise HistoryError(f"Could not create the history database {path}: {exc}.", path=str(path)) from exc
    except OSError as exc:
        raise disk_error(exc, path.parent, "creating the history database") from exc
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm"), Path(f"{temp}-journal")):
            try:
                leftover.unlink()
            except OSError:
                pass


@functools.lru_cache(maxsize=None)
def fts_available() -> bool:
    """Whether this Python's SQLite has FTS5."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE probe USING fts5(text)")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def _fts_in_sync(db: sqlite3.Connection) -> bool:
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'entries_fts'").fetchone() is None:
        return False
    indexed = db.execute("SELECT count(*) FROM entries_fts_docsize").fetchone()[0]
    return bool(indexed == db.execute("SELECT count(*) FROM entries").fetchone()[0])


def ensure_fts(db: sqlite3.Connection) -> None:
    """Create the prompt index when missing and rebuild it when stale (rule 4). Needs FTS5."""
    if _fts_in_sync(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if not _fts_in_sync(db):
            db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS entries_fts USING fts5("
                "prompt, content='entries', content_rowid='id', tokenize='porter unicode61')"
            )
            db.execute("INSERT INTO entries_fts (entries_fts) VALUES ('rebuild')")
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise
