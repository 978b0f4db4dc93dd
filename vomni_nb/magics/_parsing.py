"""Reading a magic's line and cell: pure functions of text (and the user's namespace), no shell, no I/O.

Each turns what the user typed into values or a ``UsageError`` that names the flag or the ``{name}``,
before any request is sent (rule 2 of :mod:`vomni_nb.magics._common`).
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from IPython.core.error import UsageError

from vomni_nb.errors import redact

__all__ = ["split_quiet", "parse_line", "keys_given", "number", "one_value", "fill_prompt"]


def split_quiet(line: str) -> tuple[str, bool]:
    """``"--seed 3;"`` -> (``"--seed 3"``, True): a trailing ``;`` on the magic line shows nothing."""
    stripped = line.rstrip()
    if stripped.endswith(";"):
        return stripped[:-1], True
    return line, False


def parse_line(magic: Callable[..., Any], line: str) -> Any:
    """The magic's argparse namespace for ``line``; a UsageError (keys redacted) for anything it refuses."""
    try:
        words = shlex.split(line)
    except ValueError as exc:  # unbalanced quotes: argparse would give a worse message
        raise UsageError(f"cannot parse {redact(line)!r}: {exc}") from exc
    # shlex, not IPython's arg_split (which keeps the quotes around --negative 'a, b' in the value).
    try:
        return magic.parser.parse_args(words)  # type: ignore[attr-defined]
    except UsageError as exc:  # argparse quotes what it refused, a key given where none is taken included
        raise UsageError(redact(str(exc), *keys_given(words))) from None


def keys_given(words: Sequence[str]) -> list[str]:
    """The values ``--api-key`` is given in ``words`` (redacted from every message, wherever they appear)."""
    keys = [word.split("=", 1)[1] for word in words if word.startswith("--api-key=")]
    return keys + [value for flag, value in zip(words, words[1:]) if flag == "--api-key"]


def number(flag: str, text: str | None, kind: type) -> Any:
    """``text`` as an int or float (None stays None), or a UsageError naming the flag."""
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise UsageError(f"{flag} takes {noun}; got {text!r}.") from None


def one_value(flag: str, text: str | None) -> str | None:
    """A flag that takes one value: a list (``1,2``) or a range (``1..4``) is a UsageError saying so."""
    if text is not None and ("," in text or ".." in text):
        raise UsageError(f"{flag} takes one value here; got {text!r} (a list or range sweeps only --seed, "
                         "--guidance, --steps, --size and --model/--server).")
    return text


# {name}, {name.attr}, {name[0]}, {name['key']}; {{name}} is the escape for a literal {name}.
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\[\]{}]+\])*"
_FIELD = re.compile(r"\{\{(?P<escaped>" + _NAME + r")\}\}|\{(?P<field>" + _NAME + r")\}")


def fill_prompt(text: str, namespace: Mapping[str, Any]) -> str:
    """The cell body with each ``{name}`` (``{name.attr}``, ``{name[0]}``) replaced by its value in ``namespace``.

    Only those shapes are fields: ``$``, JSON, other braces (``{ }``, ``{"a": 1}``, ``{1}``) are left as they
    are, and ``{{name}}`` is the escape that leaves ``{name}`` in the prompt. A name that is not defined is a
    UsageError naming it.
    """
    formatter = string.Formatter()

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "{" + match.group("escaped") + "}"
        field = match.group("field")
        try:
            value, _ = formatter.get_field(field, (), namespace)
        except KeyError as exc:
            name = field.split(".")[0].split("[")[0]
            if name not in namespace:
                raise UsageError(f"{{{field}}} in the prompt: no variable {name!r} is defined (write {{{{{field}}}}} "
                                 "for a literal brace).") from None
            raise UsageError(f"{{{field}}} in the prompt: {name} has no item {exc}.") from None
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            raise UsageError(f"{{{field}}} in the prompt: {exc}.") from None
        return str(value)

    return _FIELD.sub(replace, text)
