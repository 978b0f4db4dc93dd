"""Every magic's help is its docstring (with every flag its parser takes), names its Python twin, and that
twin is public: in ``vomni_nb.__all__`` and loaded lazily from the module that defines it."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from IPython.utils.capture import capture_output

import vomni_nb
from vomni_nb.magics import MAGICS

# magic -> (its prefix, the twins its help must name: each a public name of vomni_nb)
TWINS = {
    "omni_image": ("%%", ("image", "sweep")),
    "omni_edit": ("%%", ("edit",)),
    "omni_speak": ("%%", ("speak", "speak_batch")),
    "omni_chat": ("%%", ("chat", "Conversation")),
    "omni_video": ("%%", ("video",)),
    "omni_history": ("%", ("history",)),
    "omni_rerun": ("%", ("rerun",)),
    "omni_studio": ("%", ("Studio",)),
    "omni_voice": ("%", ()),
    "omni_server": ("%", ()),
}


def _ours() -> dict[str, Any]:
    found = {}
    for family in MAGICS:
        for kind in ("line", "cell"):
            for name, method in family.magics[kind].items():
                found[name] = getattr(family, method if isinstance(method, str) else method.__name__)
    return found


def test_every_magic_is_listed_here() -> None:
    assert set(_ours()) == set(TWINS)


@pytest.mark.parametrize("name", sorted(TWINS))
def test_help_is_the_docstring_with_every_flag_and_names_the_twin(magic_shell: Any, name: str) -> None:
    prefix, twins = TWINS[name]
    method = _ours()[name]
    with capture_output() as captured:
        magic_shell.run_cell(f"{prefix}{name}?")
    text = captured.stdout
    first = (method.__doc__ or "").strip().splitlines()[0]
    assert first and first in text, "the help is the magic's docstring"
    flags = {option for action in method.parser._actions for option in action.option_strings if option.startswith("--")}
    for flag in flags - {"--help"}:
        assert flag in text, flag
    for twin in twins:
        assert re.search(rf"vomni_nb\.{twin}\b", text), f"{name}'s help names vomni_nb.{twin}"
        assert twin in vomni_nb.__all__ and getattr(vomni_nb, twin) is not None


def test_every_lazy_name_is_public_and_every_public_name_loads() -> None:
    from vomni_nb import _LAZY  # type: ignore[attr-defined]
    from vomni_nb.errors import __all__ as errors

    hooks = {"__version__", "load_ipython_extension", "unload_ipython_extension"}
    assert set(vomni_nb.__all__) == set(_LAZY) | set(errors) | hooks
    for name, module in _LAZY.items():
        assert getattr(vomni_nb, name) is getattr(importlib.import_module(module), name), name
