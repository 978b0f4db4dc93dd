"""What the media magics share beyond ``_common``: SOURCE flags (``--image SRC``, ``--audio SRC``, a voice
sample) and number flags that may be left out. Pure: no request, no display."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

from vomni_nb.magics._common import number, usage_errors

__all__ = ["parse_source", "optional_number"]


def parse_source(flag: str, text: str, namespace: Mapping[str, Any], *, kind: str = "image") -> Any:
    """A SOURCE flag's value: the variable of that name in ``namespace`` (a result or bytes; a variable
    holding a path or URL names that), else a URL (``http(s)://``, ``data:``) or a history id (``#12``),
    kept for the twin to fetch, else a path that must be a file. Anything else is a UsageError, raised
    before any request."""
    from vomni_nb._sources import check_source, is_history_id, is_url

    text = text.strip()
    if text.isidentifier() and text in namespace:
        value = namespace[text]
        if not isinstance(value, (str, os.PathLike)):
            with usage_errors(f"{flag} {text}: "):
                return check_source(value, kind=kind, name="the variable")  # type: ignore[arg-type]
        text = str(value)
    if is_url(text) or is_history_id(text):
        return text
    if not os.path.isfile(os.path.expanduser(text)):
        hint = f" and no variable {text!r} is defined" if text.isidentifier() else ""
        raise UsageError(f"{flag} {text!r}: no such file{hint} (give a path, a URL, a result variable or a history "
                         "id such as #12).")
    return text


def optional_number(flag: str, text: str | None, kind: type) -> Any:
    """``number`` for a flag that may be left out (None stays None)."""
    return None if text is None else number(flag, text, kind)
