"""%%omni_image in an in-process IPython shell against real simulators: outputs, metadata, settings,
routing, and every bad input refused before a request is sent."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from PIL import Image

from tests.support.magics import generations, last_output, outputs_of, rendered
from tests.support.sims import IMAGE_MODEL, TTS_MODEL
from vomni_nb.errors import InsufficientStorageError, ServerManagerError, WrongServerError
from vomni_nb.results import ImageResult
from vomni_nb.server import default_manager


def _run(shell: Any, line: str, cell: str = "a lighthouse at dusk") -> Any:
    with capture_output() as captured:
        shell.run_cell_magic("omni_image", line, cell)
    return captured


def test_the_image_is_a_static_png_bundle_with_its_provenance(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    output = last_output(_run(magic_shell, "--size 64x48 --seed 7 --steps 3 --guidance 2.5"))
    assert set(output.data) == {"image/png", "text/plain"}
    assert Image.open(io.BytesIO(base64.b64decode(output.data["image/png"]))).size == (64, 48)
    record = output.metadata["vomni_nb"]
    assert record["schema"] == "vomni_nb/1" and record["kind"] == "image"
    assert record["model"] == IMAGE_MODEL and record["server_url"] == image_server.url
    assert record["seed"] == 7 and record["size"] == "64x48"
    assert record["params"]["num_inference_steps"] == 3 and record["params"]["guidance_scale"] == 2.5
    assert record["timings"]["total_s"] > 0
    assert "seed=7" in output.data["text/plain"]


def test_out_stores_the_result_and_a_trailing_semicolon_shows_nothing(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    captured = _run(magic_shell, "--size 32x32 --seed 3 --out pic;")
    assert outputs_of(captured) == []
    picture = magic_shell.user_ns["pic"]
    assert isinstance(picture, ImageResult) and picture.seed == 3 and picture.size == "32x32"
    shown = last_output(_run(magic_shell, "--size 32x32 --seed 4 --out other"))
    assert "image/png" in shown.data and magic_shell.user_ns["other"].seed == 4  # --out alone still shows it


def test_the_prompt_is_filled_from_the_namespace_and_the_rest_left_alone(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    magic_shell.user_ns.update(style="oil", styles=["ink", "wash"], palette={"sea": "teal"})
    body = 'a {style} sea in {palette[sea]}, {styles[1]} style; costs $5, keeps {{style}} and {"a": 1} and { }'
    _run(magic_shell, "--size 32x32 --out pic", body)
    assert magic_shell.user_ns["pic"].prompt == (
        'a oil sea in teal, wash style; costs $5, keeps {style} and {"a": 1} and { }')


def test_config_and_environment_set_the_defaults_and_flags_win(magic_shell: Any, image_server: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    default_manager().attach(image_server.url)
    magic_shell.run_line_magic("config", "VomniMagics.default_size = '40x24'")
    monkeypatch.setenv("VOMNI_DEFAULT_STEPS", "5")
    monkeypatch.setenv("VOMNI_DEFAULT_SIZE", "16x16")  # the configured value wins over the environment
    _run(magic_shell, "--out pic")
    picture = magic_shell.user_ns["pic"]
    assert picture.size == "40x24" and picture.params["num_inference_steps"] == 5
    _run(magic_shell, "--size 24x24 --steps 2 --out pic")
    assert magic_shell.user_ns["pic"].size == "24x24" and magic_shell.user_ns["pic"].params["num_inference_steps"] == 2
    magic_shell.run_line_magic("config", "ImageMagics.default_format = 'jpeg'")  # one family only
    _run(magic_shell, "--size 24x24 --out pic")
    assert magic_shell.user_ns["pic"].format == "jpeg"


def test_help_prints_the_docstring_and_every_flag(magic_shell: Any) -> None:
    with capture_output() as captured:
        magic_shell.run_cell("%%omni_image?")
    text = captured.stdout
    assert "Make an image (or a grid of them) from the prompt in the cell body" in text and "vomni_nb.image(" in text
    assert "vomni_nb.sweep(" in text and "--concurrency" in text
    for flag in ("--size", "--steps", "--guidance", "--seed", "--n", "--negative", "--format", "--via", "--model",
                 "--server", "--out", "--save", "--no-log"):
        assert flag in text, flag


BAD_LINES = [
    ("--frobnicate 3", "a cat", "unrecognized arguments"),
    ("--size big", "a cat", "size must look like"),
    ("--size 0x64", "a cat", "size sides"),
    ("--steps 0", "a cat", "steps must be from 1 to 200"),
    ("--steps 500", "a cat", "steps must be from 1 to 200"),
    ("--steps many", "a cat", "--steps takes a whole number"),
    ("--guidance 99", "a cat", "guidance must be from 0"),
    ("--n 11", "a cat", "n must be from 1 to 10"),
    ("--n 1,2", "a cat", "--n takes one value"),
    ("--negative", "a cat", "expected one argument"),
    ("--format gif", "a cat", "output format must be one of"),
    ("--via chat --format jpeg", "a cat", "always PNG"),
    ("--out 1pic", "a cat", "--out takes a variable name"),
    ("--seed 'x", "a cat", "cannot parse"),
    ("", "   \n  ", "The cell is empty"),
    ("", "a {nothing_called_this} cat", "no variable 'nothing_called_this'"),
    ("", "a {styles[7]} cat", "index out of range"),
]


@pytest.mark.parametrize(("line", "cell", "reason"), BAD_LINES, ids=[line or cell.strip() or "empty" for line, cell, _ in
                                                                       BAD_LINES])
def test_every_bad_input_is_a_usage_error_before_any_request(magic_shell: Any, image_server: Any, line: str, cell: str,
                                                             reason: str) -> None:
    default_manager().attach(image_server.url)
    magic_shell.user_ns["styles"] = ["ink"]
    before = generations(image_server)
    with pytest.raises(UsageError, match=reason):
        magic_shell.run_cell_magic("omni_image", line, cell)
    assert generations(image_server) == before


def test_routing_picks_the_server_whose_model_makes_images(magic_shell: Any, image_server: Any,
                                                           tts_server: Any) -> None:
    default_manager().attach(tts_server.url)
    default_manager().attach(image_server.url)
    default_manager().use(TTS_MODEL)  # the default server is a TTS one: images still go to the image model
    before = generations(image_server), generations(tts_server)
    _run(magic_shell, "--size 32x32 --out pic")
    assert magic_shell.user_ns["pic"].model == IMAGE_MODEL
    assert (generations(image_server), generations(tts_server)) == (before[0] + 1, before[1])


def test_without_a_server_it_says_exactly_what_to_start(magic_shell: Any) -> None:
    with pytest.raises(ServerManagerError) as caught:
        magic_shell.run_cell_magic("omni_image", "", "a cat")
    text = rendered(caught.value)
    assert len(text.splitlines()) == 3, text  # cause, advice, and the cell's line
    assert "no server can make images" in text.splitlines()[0] and text.splitlines()[1].startswith("→ Start one")
    assert f"`%omni_server start {IMAGE_MODEL} --sim` without one" in text


def test_a_server_that_cannot_make_images_is_named_wrong_before_sending(magic_shell: Any, image_server: Any,
                                                                        tts_server: Any) -> None:
    default_manager().attach(image_server.url)
    default_manager().attach(tts_server.url)
    before = generations(tts_server)
    with pytest.raises(WrongServerError) as caught:
        magic_shell.run_cell_magic("omni_image", f"--server {tts_server.url}", "a cat")
    assert generations(tts_server) == before
    text = rendered(caught.value)
    assert "a TTS model: it cannot make images" in text and f"--server {IMAGE_MODEL}" in text
    assert caught.value.servers == [IMAGE_MODEL]


def test_an_unknown_model_that_refuses_images_is_reported_as_the_wrong_server(magic_shell: Any, image_server: Any,
                                                                              start_sim: Any) -> None:
    # A served-model-name the table does not know: only the server's answer can tell, and it is a 503
    # "No diffusion stage found", which must read as the wrong server, not as an overloaded one.
    alias = start_sim(TTS_MODEL, "--served-model-name", "house-voice")
    default_manager().attach(image_server.url)
    with pytest.raises(WrongServerError) as caught:
        magic_shell.run_cell_magic("omni_image", f"--server {alias.url}", "a cat")
    text = rendered(caught.value)
    assert "cannot make images" in text and "No diffusion stage" in text and "Overloaded" not in text
    assert f"Servers that can: {IMAGE_MODEL}" in text


def test_a_server_error_shows_cause_and_advice_not_a_traceback(magic_shell: Any, start_sim: Any) -> None:
    full = start_sim(IMAGE_MODEL, "--rate-507", "1")
    default_manager().attach(full.url)
    with capture_output() as captured, pytest.raises(InsufficientStorageError) as caught:
        magic_shell.run_cell_magic("omni_image", "--size 32x32", "a cat")
    lines = rendered(caught.value).splitlines()
    # The cause (the simulator's own words already say what to do, so no separate advice line) and the cell's line.
    assert len(lines) <= 3 and lines[0].startswith("InsufficientStorageError: 507") and "smaller resolution" in lines[0]
    assert lines[-1].startswith("  at ") and "Traceback" not in "\n".join(lines)
    assert outputs_of(captured) == []  # no result, and no status line left behind


def test_model_flag_routes_to_that_models_server(magic_shell: Any, image_server: Any, edit_server: Any) -> None:
    default_manager().attach(image_server.url)
    default_manager().attach(edit_server.url)
    with pytest.raises(ServerManagerError, match="no server serves 'black-forest-labs/FLUX.1-dev'"):
        magic_shell.run_cell_magic("omni_image", "--model black-forest-labs/FLUX.1-dev", "a cat")
    _run(magic_shell, f"--model {IMAGE_MODEL} --size 32x32 --out pic")
    assert magic_shell.user_ns["pic"].server_url == image_server.url


def test_via_chat_and_several_images_from_one_request(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    output = last_output(_run(magic_shell, "--via chat --size 32x32 --seed 2"))
    assert "image/png" in output.data and output.metadata["vomni_nb"]["params"]["via"] == "chat"
    several = last_output(_run(magic_shell, "--n 3 --size 32x32 --seed 5 --out batch"))
    assert len(magic_shell.user_ns["batch"]) == 3
    page = several.data["text/html"]
    import re

    assert all(re.search(rf"<figcaption[^>]*>seed 5 #{index}( ·|<)", page) for index in range(3))
    assert "only #0 reruns alone" in page
