"""Between records and rows: pure functions that check a record, turn it into column values, read a
row back into a frozen :class:`Entry`, and build the SQL of a search. No I/O here.

Rules:

1. A record is checked before anything is written: a dict, schema ``vomni_nb/1`` (or none), a known
   kind and status, params a dict, everything JSON-safe (no NaN). Keys that could hold a secret are
   dropped; error text goes through ``errors.redact``.
2. User text never reaches a query language: search words become quoted FTS5 prefix phrases, or
   LIKE patterns with ``%``, ``_`` and ``\\`` escaped; every value is a bound parameter.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vomni_nb._recipes import RECORD_SCHEMA, clean_record
from vomni_nb.errors import HistoryError, InvalidRequestError, redact

__all__ = [
    "KINDS",
    "STATUSES",
    "COLUMNS",
    "StoredFile",
    "Entry",
    "checked_record",
    "row_values",
    "entry_from_row",
    "search_clause",
]

KINDS = ("image", "edit", "speech", "chat", "video")
STATUSES = ("ok", "error", "cancelled")
COLUMNS = (
    "id", "created_at", "kind", "model", "server_url", "prompt", "params", "seed", "status", "timings",
    "metrics", "error", "request_id", "record",
)
_INT64 = (-(2**63), 2**63 - 1)


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


def checked_record(record: Mapping[str, Any], status: str, metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A clean copy of ``record`` (``metrics`` merged in) or HistoryError saying what is wrong with it."""
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
    if metrics is not None:
        rec["metrics"] = clean_record(metrics)
    _dumps(rec, "record")
    return rec


def _error_text(error: str | BaseException | None) -> str | None:
    if error is None:
        return None
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return redact(text)[:4000]


def row_values(rec: Mapping[str, Any], status: str, error: str | BaseException | None) -> dict[str, Any]:
    """Column values of the ``entries`` row for a checked record (everything but ``id``)."""
    seed = rec.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or not _INT64[0] <= seed <= _INT64[1]:
        seed = None  # kept in the record JSON whatever it is; the column holds what SQLite can
    return {
        "created_at": str(rec.get("created_at") or rec.get("created") or _now()),  # Provenance says "created"
        "recorded_at": _now(),
        "kind": rec["kind"],
        "model": rec.get("model"),
        "server_url": rec.get("server_url"),
        "prompt": str(rec.get("prompt") or ""),
        "params": _dumps(rec.get("params") or {}, "params"),
        "seed": seed,
        "status": status,
        "timings": _dumps(rec.get("timings") or {}, "timings"),
        "metrics": _dumps(rec.get("metrics") or {}, "metrics"),
        "error": _error_text(error),
        "request_id": rec.get("request_id"),
        "record": _dumps(rec, "record"),
    }


def entry_from_row(row: Sequence[Any], files: Sequence[StoredFile]) -> Entry:
    """An Entry from a row selected as :data:`COLUMNS`."""
    return Entry(
        id=row[0], created_at=row[1], kind=row[2], model=row[3], server_url=row[4], prompt=row[5],
        params=_loads(row[6], {}), seed=row[7], status=row[8], timings=_loads(row[9], {}),
        metrics=_loads(row[10], {}), error=row[11], request_id=row[12], files=tuple(files),
        record=_loads(row[13], {}),
    )


def _fts_query(text: str) -> str:
    # Every word as a quoted prefix phrase: user text never reaches FTS5's query syntax.
    words = [w for w in text.split() if any(c.isalnum() for c in w)]
    return " ".join('"' + w.replace('"', '""') + '"*' for w in words)


def _like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_clause(
    text: str | None, kind: str | None, model: str | None, limit: int | None, *, fts: bool
) -> tuple[str, list[Any]]:
    """``WHERE ... ORDER BY id DESC LIMIT n`` and its parameters; InvalidRequestError for a bad kind or limit."""
    if kind is not None and kind not in KINDS:
        raise InvalidRequestError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidRequestError(f"limit must be a positive whole number, not {limit!r}.")
    where: list[str] = []
    args: list[Any] = []
    if text and text.strip():
        query = _fts_query(text) if fts else ""
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
    clause = ("WHERE " + " AND ".join(where) + " ") if where else ""
    clause += "ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
    return clause, args
