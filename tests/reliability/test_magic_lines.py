"""Hypothesis fuzzing of every magic's argument line: whatever is typed after ``%omni_...`` or ``%%omni_...``,
parsing gives the twin's call or a UsageError (shown as one line); never another exception, never a request.

Every magic ``%load_ext vomni_nb`` declares (``vomni_nb.magics.LAZY``) is looked up in a shell as IPython
looks it up. A magic's parsing is the pure function beside its class (``image_call`` for ``omni_image``:
``<name>_call``, taking the line and some of cell, namespace and settings); a magic without one
(``%omni_server``, whose commands start processes) is fuzzed through its own argument parser, as its method
parses. Lines are built from the magic's own flags with hostile values: numbers out of range, ranges,
lists, sizes, quotes left open, ``{names}`` not defined, paths that cannot exist, keys, unicode.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from vomni_nb.magics import LAZY
from vomni_nb.magics._common import Settings, parse_line

KEY = "sk-fuzz-0123456789abcdef"
NAMESPACE: dict[str, Any] = {"n": 3, "name": "fox", "data": b"\x89PNG", "items": [1, 2], "nothing": None}
VALUES = st.one_of(
    st.sampled_from(["", "0", "-1", "1", "3", "1e9", "nan", "inf", "-0", "2.5", "1..8", "8..1", "1..8:2", "1..2:0",
                     "1,2,3", "1,,2", ",", "a,b", "64x64", "512x512", "0x0", "99999x99999", "wxh", "1024*1024",
                     "png", "jpeg", "gif", "images", "chat", "text,audio", "audio", "vivian", "x" * 300,
                     "'unclosed", '"also', "{name}", "{missing}", "{{", "}", "$n", "--", "-", "http://127.0.0.1:9",
                     "#12", "#0", "#-1", "nothing", "data", "items", "/dev/null", "../etc/passwd", "/nonexistent/a.png",
                     "é🦊\u202e", "\x00", "\\", ";", KEY, f"--api-key {KEY}"]),
    st.text(max_size=12),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
WORDS = ["--", "-", "--nope", "list", "start", "stop", "status", "logs", "attach", "use", "restart", "panel", "upload",
         "delete", ";"]


def _magics() -> dict[str, Callable[..., Any]]:
    """name -> the bound magic method, looked up (and so loaded) as IPython does on first use."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "vomni_nb")
    return {name: shell._find_with_lazy_load(kind, name) for name, (kind, _) in LAZY.items()}


MAGICS = _magics()


def _parse_function(name: str, method: Callable[..., Any]) -> Callable[..., Any] | None:
    module = inspect.getmodule(type(method.__self__))  # type: ignore[attr-defined]
    function = getattr(module, f"{name.removeprefix('omni_')}_call", None)
    return function if callable(function) else None


def _flags(method: Callable[..., Any]) -> list[str]:
    return [option for action in method.parser._actions for option in action.option_strings]  # type: ignore[attr-defined]


def _line(flags: list[str]) -> st.SearchStrategy[str]:
    word = st.one_of(st.sampled_from(flags + WORDS), VALUES)
    return st.lists(word, max_size=8).map(" ".join)


def test_every_declared_magic_is_found() -> None:
    assert all(MAGICS.values()), [name for name, method in MAGICS.items() if method is None]
    assert {"omni_image", "omni_chat", "omni_speak", "omni_server"} <= set(MAGICS)


@pytest.mark.parametrize("name", sorted(LAZY))
def test_a_magic_line_parses_or_is_a_usage_error(name: str) -> None:
    method = MAGICS[name]
    parse = _parse_function(name, method)
    wanted = set(inspect.signature(parse).parameters) if parse is not None else set()

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @example(line="x" * 300, cell="a fox")  # a name too long for the file system
    @example(line=f"--api-key {KEY}", cell="a fox")  # a key where none is taken
    @example(line=f"-- --api-key {KEY}", cell="a fox")
    @given(line=_line(_flags(method)), cell=st.one_of(st.just("a fox in the snow"), st.text(max_size=40),
                                                      st.just("{name} and {n}"), st.just("{missing}")))
    def check(line: str, cell: str) -> None:
        arguments = {"line": line, "cell": cell, "namespace": NAMESPACE, "settings": Settings()}
        try:
            if parse is None:
                parse_line(method, line)
            else:
                assert parse(**{key: value for key, value in arguments.items() if key in wanted}) is not None
        except UsageError as exc:
            assert str(exc).strip(), "a UsageError says what is wrong"
            if f"--api-key {KEY}" in line:
                assert KEY not in str(exc), "a key given on the line is never echoed"

    check()
