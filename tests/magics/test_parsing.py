"""The magics' parsing, as pure functions of the line (no shell, no server, no request)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from vomni_nb.magics._common import Settings, VomniMagics, fill_prompt, split_quiet
from vomni_nb.magics.image import image_call


def test_image_line_becomes_the_twins_keyword_arguments() -> None:
    call = image_call("--size 512x256 --steps 8 --guidance 3.5 --seed 7 --n 2 --negative 'blur, noise' --format jpg "
                      "--model M --out pic --save out/ --no-log", "  a red kite  \n", {}, Settings())
    assert call.twin == "vomni_nb.generation:image" and call.out == "pic" and not call.quiet
    assert dict(call.kwargs) == {"prompt": "a red kite", "size": "512x256", "steps": 8, "guidance": 3.5, "seed": 7,
                                 "n": 2, "negative": "blur, noise", "format": "jpg", "via": "images", "model": "M",
                                 "server": None, "save": "out/", "log": False}
    # The twin's signature is the contract: every keyword the parser makes is one it takes.
    import inspect

    from vomni_nb.generation import image

    assert set(call.kwargs) <= set(inspect.signature(image).parameters)


def test_settings_fill_what_the_line_leaves_out() -> None:
    settings = Settings(default_size="64x64", default_steps=4, default_guidance=1.5, default_format="webp",
                        default_server="img", history=False)
    kwargs = image_call("", "a cat", {}, settings).kwargs
    assert (kwargs["size"], kwargs["steps"], kwargs["guidance"], kwargs["format"]) == ("64x64", 4, 1.5, "webp")
    assert kwargs["server"] == "img" and kwargs["log"] is False
    # Naming a model routes by model: the default server does not override it.
    assert image_call("--model M", "a cat", {}, settings).kwargs["server"] is None


def test_a_trailing_semicolon_is_quiet() -> None:
    assert split_quiet("--seed 3 ;") == ("--seed 3 ", True)
    assert split_quiet("--seed 3") == ("--seed 3", False)
    assert image_call("--seed 3;", "a cat", {}, Settings()).quiet


@pytest.mark.parametrize(("text", "expected"), [
    ("a {x} b", "a 1 b"),
    ("{obj.name} / {items[0]} / {table[k]}", "kite / first / v"),
    ("{{x}} stays", "{x} stays"),
    ('json {"x": {"y": 1}} and ${x}', 'json {"x": {"y": 1}} and $1'),
    ("{ x } {} {0} {x!r} {x:>3}", "{ x } {} {0} {x!r} {x:>3}"),
])
def test_fill_prompt(text: str, expected: str) -> None:
    namespace = {"x": 1, "obj": types.SimpleNamespace(name="kite"), "items": ["first"], "table": {"k": "v"}}
    assert fill_prompt(text, namespace) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("{missing}", "no variable 'missing'"),
    ("{obj.nope}", "has no attribute 'nope'"),
    ("{table[zz]}", "table has no item 'zz'"),
    ("{items[3]}", "index out of range"),
])
def test_fill_prompt_names_what_is_missing(text: str, reason: str) -> None:
    namespace = {"obj": types.SimpleNamespace(), "items": [], "table": {}}
    with pytest.raises(UsageError, match=reason):
        fill_prompt(text, namespace)


def test_settings_fall_back_to_the_environment() -> None:
    magics = VomniMagics()
    environ = {"VOMNI_DEFAULT_SIZE": "128X96", "VOMNI_DEFAULT_STEPS": "6", "VOMNI_CONCURRENCY": "2",
               "VOMNI_HISTORY": "off", "VOMNI_SERVER": "http://h:1"}
    assert magics.settings(environ) == Settings(default_size="128x96", default_steps=6, concurrency=2, history=False,
                                                default_server="http://h:1")
    magics.default_steps = 9
    assert magics.settings(environ).default_steps == 9  # configured beats the environment
    assert magics.settings({"VOMNI_HISTORY": "/tmp/h.sqlite3"}).history is True
    magics.default_steps = None
    with pytest.raises(UsageError, match=r"\$VOMNI_DEFAULT_STEPS is 'many'"):
        magics.settings({"VOMNI_DEFAULT_STEPS": "many"})
    with pytest.raises(UsageError, match="VOMNI_DEFAULT_SIZE: size must look like"):
        magics.settings({"VOMNI_DEFAULT_SIZE": "huge"})


def test_a_bad_configured_size_is_refused_when_set() -> None:
    from traitlets import TraitError

    magics = VomniMagics()
    with pytest.raises((UsageError, TraitError)):
        magics.default_size = "huge"
    magics.default_size = "64X64"
    assert magics.default_size == "64x64"


def test_settings_can_be_unset_again_and_each_kind_of_value_is_read() -> None:
    from traitlets import TraitError

    magics = VomniMagics()
    magics.default_size, magics.default_format = "64X64", "JPEG"
    assert (magics.default_size, magics.default_format) == ("64x64", "jpeg")
    magics.default_size = magics.default_format = None  # back to the environment, then the built-in default
    assert magics.settings({"VOMNI_DEFAULT_SIZE": "32x32"}).default_size == "32x32"
    with pytest.raises((UsageError, TraitError), match="gif"):
        magics.default_format = "gif"
    assert magics.settings({"VOMNI_DEFAULT_GUIDANCE": "3.5"}).default_guidance == 3.5
    with pytest.raises(UsageError, match=r"\$VOMNI_DEFAULT_GUIDANCE is 'strong': not a number"):
        magics.settings({"VOMNI_DEFAULT_GUIDANCE": "strong"})


def test_a_history_path_with_nothing_recorded_is_a_usage_error(tmp_path: Path) -> None:
    from vomni_nb.magics._common import reading_store

    assert reading_store(Settings()) is None  # unset: the default history
    with pytest.raises(UsageError, match=r"There is no history at .*empty.* nothing has been recorded there yet"):
        reading_store(Settings(history_path=str(tmp_path / "empty")))


def test_a_plain_ctrl_c_becomes_interrupted_and_keeps_what_finished() -> None:
    from vomni_nb.errors import Interrupted
    from vomni_nb.magics._common import interrupted

    plain = KeyboardInterrupt()
    plain.partial = "two of three"  # type: ignore[attr-defined]
    found = interrupted(plain, "the server aborted the request")
    assert isinstance(found, Interrupted) and found.__cause__ is plain and found.partial == "two of three"
    assert "the server aborted the request" in str(found)
    assert interrupted(found, "other words") is found  # already ours: unchanged


def test_the_routing_advice_can_be_typed_as_it_is() -> None:
    import re

    from IPython.core.magic_arguments import parse_argstring

    from vomni_nb import _advice
    from vomni_nb.magics.server import ServerMagics
    from vomni_nb.routing import SUGGESTED_MODELS

    for model in SUGGESTED_MODELS.values():
        lines = re.findall(r"`%omni_server ([^`]+)`", _advice.start_for_task(model))
        assert len(lines) == 2
        for line in lines:
            parse_argstring(ServerMagics.omni_server, line)
    assert "pass --server img (server='img' in Python)" in _advice.use_server(["img", "img2"])
