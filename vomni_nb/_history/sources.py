"""Input media named by a history id: what ``%%omni_edit SOURCE`` and ``--image/--audio SRC`` accept.

:func:`load_source` turns a history id, a path, a result or bytes into what the client's media
arguments take (``edit(image=...)``, ``chat(images=..., audio=...)``, ``video(image=...)``): a path
to the stored file, or bytes. Reading works with recording turned off.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from vomni_nb._history.rows import StoredFile
from vomni_nb._history.store import HistoryStore, _database_path, _shared_store, default_history_path
from vomni_nb.errors import InvalidRequestError

__all__ = ["load_source", "parse_history_id", "reading_store"]

MediaKind = Literal["image", "audio", "video"]
_ID = re.compile(r"^#?(\d+)(?::(\d+))?$")


def parse_history_id(source: Any) -> tuple[int, int | None] | None:
    """(entry id, file index or None) when ``source`` names a history entry: ``12``, ``"12"``, ``"#12"``,
    ``"#12:1"`` (its second file); None for anything else. A file literally named ``12`` is ``./12``."""
    if isinstance(source, bool):
        return None
    if isinstance(source, int):
        return (source, None) if source > 0 else None
    if isinstance(source, str):
        found = _ID.match(source.strip())
        if found:
            return int(found.group(1)), int(found.group(2)) if found.group(2) is not None else None
    return None


def reading_store(store: HistoryStore | None = None) -> HistoryStore:
    """``store``, else the default one, opened to read even when recording is off; a clear error when
    there is no history yet."""
    if store is not None:
        return store
    path = _database_path(default_history_path())
    if not path.exists():
        raise InvalidRequestError(f"There is no history yet at {path} (VOMNI_HISTORY moves it); nothing has been recorded.")
    return _shared_store(path)


def _pick(files: tuple[StoredFile, ...], index: int | None, kind: MediaKind | None, entry_id: int) -> StoredFile:
    if index is not None:
        if index >= len(files):
            raise InvalidRequestError(f"History #{entry_id} has {len(files)} file(s); there is no #{entry_id}:{index}.")
        chosen = files[index]
        if kind is not None and not chosen.mime.startswith(kind + "/"):
            raise InvalidRequestError(f"History #{entry_id}:{index} is {chosen.mime}, not {kind}.")
        return chosen
    matching = [f for f in files if kind is None or f.mime.startswith(kind + "/")]
    if not matching:
        found = ", ".join(sorted({f.mime for f in files}))
        raise InvalidRequestError(f"History #{entry_id} has no {kind} output (it has {found}).")
    return matching[0]


def load_source(source: Any, *, kind: MediaKind | None = None, store: HistoryStore | None = None) -> bytes | Path:
    """What a SOURCE names, for the client's media arguments.

    * a history id (``12``, ``"12"``, ``"#12"``; ``"#12:1"`` for its second output file): the path of
      that output file in the store (``store``, default: the default one); with ``kind`` ("image",
      "audio", "video"), the entry's first output of that kind;
    * a path to a file: the path;
    * a result (anything with ``.data`` or ``.audio`` bytes: ImageResult, SpeechResult, ...) or bytes:
      the bytes.

    Anything else, an unknown id, a failed entry or an output of the wrong kind is an
    InvalidRequestError that says so (nothing is sent anywhere).
    """
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    named = parse_history_id(source)
    if named is not None:
        entry_id, index = named
        history = reading_store(store)
        entry = history.get(entry_id)
        if entry is None:
            raise InvalidRequestError(f"There is no history entry #{entry_id} in {history.path}.")
        if not entry.files:
            why = f"it failed ({entry.error})" if entry.status != "ok" else "it has no output file"
            raise InvalidRequestError(f"History #{entry_id} cannot be used as input: {why}.")
        chosen = _pick(entry.files, index, kind, entry_id)
        if not chosen.exists:
            raise InvalidRequestError(f"The file of history #{entry_id} is gone from the store ({chosen.path}).")
        return chosen.path
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InvalidRequestError(f"{str(source)!r} is neither a history id (#12) nor a file.")
        return path
    for attribute in ("data", "audio"):
        payload = getattr(source, attribute, None)
        if isinstance(payload, bytes):
            return payload
    raise InvalidRequestError(f"Cannot use {type(source).__name__} as input: give a history id, a path, a result or bytes.")
