"""Input media for the twins (``--image SRC``, ``--audio SRC``, ``image=``, ``images=``, ``audio=``).

A source is a path, an ``http(s)://`` or ``data:`` URL, a result (ImageResult, SpeechResult, ...), bytes,
or a history id (``12``, ``"12"``, ``"#12"``; ``"#12:1"`` for its second file; a file literally named
``12`` is ``./12``). Two steps, so bad input fails before anything
is sent:

1. :func:`check_source` (pure, no I/O but a file's existence): a missing file, an empty value or
   something that is not media is an :class:`~vomni_nb.errors.InvalidRequestError`.
2. :func:`fetch_source` (in the twin, after routing, before the request): a URL is downloaded (the model
   server may have no internet access, and the client's media arguments take bytes or paths), a
   ``data:`` URL decoded, a history id looked up in the history store
   (:func:`vomni_nb._history.sources.load_source`: the stored file's path; an unknown id, a failed
   entry or a file of the wrong kind is an InvalidRequestError, still before anything is sent).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from vomni_nb.errors import InvalidRequestError

__all__ = ["MediaKind", "MAX_DOWNLOAD_BYTES", "is_url", "is_history_id", "check_source",
           "check_sources", "fetch_source", "fetch_sources"]

MediaKind = Literal["image", "audio", "video"]
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024  # a picture or a clip, not a data set
_URL_PREFIXES = ("http://", "https://", "data:")


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(_URL_PREFIXES)


def is_history_id(value: Any) -> bool:
    """Whether ``value`` names a history entry (``12``, ``"12"``, ``"#12"``, ``"#12:1"``)."""
    from vomni_nb._history.sources import parse_history_id

    return parse_history_id(value) is not None


def check_source(source: Any, *, kind: MediaKind, name: str = "source") -> Any:
    """``source`` checked (step 1 of the module); returns what :func:`fetch_source` takes."""
    if is_history_id(source):
        return source.strip() if isinstance(source, str) else source
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise InvalidRequestError(f"{name} is empty (0 bytes).")
        return bytes(source)
    if isinstance(source, str):
        text = source.strip()
        if not text:
            raise InvalidRequestError(f"{name} is empty: give a path, a URL, a result or a history id (#12).")
        if is_url(text):
            return text
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InvalidRequestError(f"{name}: no such file {str(path)!r} (give a path, an http(s) or data: URL, a "
                                      "result, or a history id such as #12).")
        return path
    for attribute in ("data", "audio"):
        if isinstance(getattr(source, attribute, None), bytes):
            return source
    raise InvalidRequestError(f"{name}: cannot use {type(source).__name__} as {kind} input; give a path, a URL, a "
                              "result (ImageResult, SpeechResult, ...) or bytes.")


def check_sources(sources: Any, *, kind: MediaKind, name: str) -> list[Any]:
    """One source or a list of them, each checked."""
    if sources is None:
        return []
    many = isinstance(sources, Sequence) and not isinstance(sources, (str, bytes, bytearray))
    return [check_source(item, kind=kind, name=name) for item in (sources if many else [sources])]


def fetch_source(source: Any, *, kind: MediaKind, timeout: float = 30.0) -> Any:
    """What the client's media arguments take (step 2 of the module): bytes, a path or a result."""
    if is_history_id(source):
        from vomni_nb._history.sources import load_source

        return load_source(source, kind=kind)
    if not is_url(source):
        return source
    text = source.strip()
    if text.lower().startswith("data:"):
        from vomni_nb.errors import ResponseFormatError
        from vomni_nb.protocol.dataurl import decode_data_url

        try:
            return decode_data_url(text)[1]
        except ResponseFormatError as exc:
            raise InvalidRequestError(f"The data: URL given as {kind} cannot be decoded: {exc}") from exc
    return _download(text, kind, timeout)


def fetch_sources(sources: Sequence[Any], *, kind: MediaKind) -> list[Any]:
    return [fetch_source(item, kind=kind) for item in sources]


def _download(url: str, kind: MediaKind, timeout: float) -> bytes:
    import httpx

    from vomni_nb.errors import redact

    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise InvalidRequestError(f"Fetching the {kind} at {redact(url)} failed: HTTP {response.status_code}. "
                                          "Check the URL, or download it and give the path.")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_DOWNLOAD_BYTES:
                    raise InvalidRequestError(f"The {kind} at {redact(url)} is larger than "
                                              f"{MAX_DOWNLOAD_BYTES // 2**20} MB; download it and give the path.")
    except httpx.HTTPError as exc:
        raise InvalidRequestError(f"Fetching the {kind} at {redact(url)} failed ({type(exc).__name__}). Check the URL, "
                                  "or download it and give the path.") from exc
    if not data:
        raise InvalidRequestError(f"The {kind} at {redact(url)} is empty.")
    return bytes(data)
