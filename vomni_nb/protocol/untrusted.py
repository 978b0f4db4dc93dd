"""Reading a server's bytes as untrusted input: JSON with bounded nesting, and the parsers' last guard.

Rules:

1. Every parser of server data raises only :mod:`vomni_nb.errors` types. The parsers check what
   they read (``parse.field``, ``wav.parse_wav``'s format checks, the stream states' type checks);
   :func:`reads_untrusted` is the guard behind those checks: whatever else a hostile body provokes
   (a Pillow ``DecompressionBombError``, a ``struct.error``, a ``TypeError`` from a shape nobody
   foresaw) becomes a ResponseFormatError chained to it, marked ``guarded`` so the fuzz tests can
   tell a foreseen refusal from a caught surprise (they fail on the latter: the parser needs a check).
2. JSON nested deeper than :data:`~vomni_nb.protocol.limits.MAX_JSON_DEPTH` is refused, before any
   recursive code (ours: redaction, ``str()`` of a body) can meet a RecursionError.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from vomni_nb.errors import ResponseFormatError, VomniError
from vomni_nb.protocol.limits import MAX_JSON_DEPTH

__all__ = ["load_json", "json_depth", "reads_untrusted", "was_guarded"]

P = ParamSpec("P")
T = TypeVar("T")


def json_depth(value: Any, give_up_at: int = MAX_JSON_DEPTH) -> int:
    """How deeply ``value`` nests (a scalar: 0), counted without recursion; stops past ``give_up_at``."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > give_up_at:
                return deepest
        pending.extend((child, depth) for child in children)
    return deepest


def load_json(content: bytes | str, what: str = "response") -> Any:
    """JSON from a body; an HTML page, truncated JSON or absurd nesting raises ResponseFormatError."""
    try:
        value = json.loads(content)
    except RecursionError as exc:
        raise ResponseFormatError(f"The {what} nests deeper than any API answer (more than {MAX_JSON_DEPTH} "
                                  "levels): refused. Is this the right server?") from exc
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raw = content if isinstance(content, bytes) else content.encode("utf-8", errors="replace")
        snippet = raw[:80].decode("utf-8", errors="replace")
        hint = " (an HTML page: a proxy in between?)" if snippet.lstrip().lower().startswith(("<!doctype", "<html")) else ""
        raise ResponseFormatError(f"The {what} is not valid JSON{hint}: {snippet!r}...") from exc
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ResponseFormatError(f"The {what} nests deeper than any API answer (more than {MAX_JSON_DEPTH} "
                                  "levels): refused. Is this the right server?")
    return value


def reads_untrusted(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a parser of server data: an exception that is not ours becomes a (guarded) ResponseFormatError."""

    def decorate(parser: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(parser)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return parser(*args, **kwargs)
            except VomniError:
                raise
            except Exception as exc:  # noqa: BLE001 - rule 1: hostile bytes must not surface a library's error
                error = ResponseFormatError(
                    f"The server sent {what} that cannot be read ({type(exc).__name__}: {str(exc)[:160]}).")
                error.guarded = True  # type: ignore[attr-defined]  # read by was_guarded()
                raise error from exc

        return guarded

    return decorate


def was_guarded(error: BaseException) -> bool:
    """Whether ``error`` came from :func:`reads_untrusted`'s guard rather than a parser's own check."""
    return bool(getattr(error, "guarded", False))
