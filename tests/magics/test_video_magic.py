"""%%omni_video in an in-process IPython shell against a real simulator: a static player with its provenance,
a first frame from a variable, settings, failures, and every bad input refused before a request. Clips
stay tiny (64x64, a handful of frames), so each job takes a fraction of a second."""

from __future__ import annotations

import io
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from PIL import Image

from tests.support.magics import generations, last_output, outputs_of, rendered
from tests.support.sims import VIDEO_MODEL
from vomni_nb.errors import JobFailedError
from vomni_nb.results import VideoResult
from vomni_nb.server import default_manager

SMALL = "--size 64x64 --seconds 1 --fps 4"


def _run(shell: Any, line: str, cell: str = "waves rolling onto a beach") -> Any:
    with capture_output() as captured:
        shell.run_cell_magic("omni_video", line, cell)
    return captured


def test_the_clip_is_a_static_player_with_its_provenance(magic_shell: Any, video_server: Any) -> None:
    default_manager().attach(video_server.url)
    output = last_output(_run(magic_shell, f"{SMALL} --seed 5 --steps 4 --out clip"))
    assert set(output.data) == {"text/plain", "text/html"}
    html = output.data["text/html"]
    assert html.startswith('<video controls src="data:video/mp4;base64,') and "autoplay" not in html
    record = output.metadata["vomni_nb"]
    assert record["kind"] == "video" and record["model"] == VIDEO_MODEL and record["server_url"] == video_server.url
    assert record["seed"] == 5 and record["params"]["size"] == "64x64" and record["params"]["seconds"] == "1"
    assert record["params"]["num_inference_steps"] == 4 and record["id"].startswith("video_gen_")
    clip = magic_shell.user_ns["clip"]
    assert isinstance(clip, VideoResult) and clip.num_frames == 5 and clip.data[4:8] == b"ftyp"


def test_a_first_frame_comes_from_a_variable_and_the_prompt_is_filled(magic_shell: Any, video_server: Any) -> None:
    default_manager().attach(video_server.url)
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), "orange").save(buffer, "PNG")
    magic_shell.user_ns.update(frame=buffer.getvalue(), mood="calm")
    _run(magic_shell, "--size 64x64 --frames 5 --fps 4 --seed 3 --image frame --out clip;", "a {mood} sea")
    _run(magic_shell, "--size 64x64 --frames 5 --fps 4 --seed 3 --out plain;", "a {mood} sea")
    _run(magic_shell, "--size 64x64 --frames 5 --fps 4 --seed 3 --out again;", "a {mood} sea")
    clip, plain = magic_shell.user_ns["clip"], magic_shell.user_ns["plain"]
    assert clip.prompt == plain.prompt == "a calm sea" and clip.num_frames == 5
    assert plain.data == magic_shell.user_ns["again"].data  # a recipe gives the same clip ...
    assert clip.data != plain.data  # the same recipe, but it started from the picture


def test_the_default_server_setting_picks_the_server(magic_shell: Any, video_server: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    magic_shell.run_line_magic("config", f"VomniMagics.default_server = '{video_server.url}'")
    before = generations(video_server)
    _run(magic_shell, f"{SMALL} --out clip;")
    assert generations(video_server) == before + 1 and magic_shell.user_ns["clip"].server_url == video_server.url


def test_help_prints_the_docstring_and_every_flag(magic_shell: Any) -> None:
    with capture_output() as captured:
        magic_shell.run_cell("%%omni_video?")
    text = captured.stdout
    assert "Make a video clip from the prompt" in text and "vomni_nb.video(" in text
    for flag in ("--size", "--seconds", "--fps", "--frames", "--steps", "--guidance", "--negative", "--seed", "--image",
                 "--model", "--server", "--out", "--save", "--no-log"):
        assert flag in text, flag


def test_a_failed_job_is_a_short_error_and_leaves_nothing_behind(magic_shell: Any, video_server: Any) -> None:
    default_manager().attach(video_server.url)
    with capture_output() as captured, pytest.raises(JobFailedError) as caught:
        magic_shell.run_cell_magic("omni_video", SMALL, "this clip will [[fail]]")
    text = rendered(caught.value)
    assert len(text.splitlines()) <= 3 and "failed" in text  # cause, advice, the cell's line
    assert outputs_of(captured) == []


BAD_LINES = [
    ("--frobnicate", "waves", "unrecognized arguments"),
    ("--size big", "waves", "size must look like"),
    ("--size 64x64,128x128", "waves", "--size takes one value"),
    ("--seconds 0", "waves", "seconds must be from 1 to 600"),
    ("--seconds 1.5", "waves", "--seconds takes a whole number"),
    ("--seconds 1 --frames 9", "waves", "Give seconds or frames, not both"),
    ("--fps 0", "waves", "fps must be from 1"),
    ("--steps 500", "waves", "steps must be from 1 to 200"),
    ("--guidance 99", "waves", "guidance must be from 0"),
    ("--seed x", "waves", "--seed takes a whole number"),
    ("--image nowhere.png", "waves", "no such file"),
    ("--out 1x", "waves", "--out takes a variable name"),
    ("", " ", "The cell is empty"),
    ("", "a {no_such_name} sea", "no variable 'no_such_name'"),
]


@pytest.mark.parametrize(("line", "cell", "reason"), BAD_LINES, ids=[line or cell.strip() or "empty"
                                                                       for line, cell, _ in BAD_LINES])
def test_every_bad_input_is_a_usage_error_before_any_request(magic_shell: Any, video_server: Any, line: str, cell: str,
                                                             reason: str) -> None:
    default_manager().attach(video_server.url)
    before = generations(video_server)
    with pytest.raises(UsageError, match=reason):
        magic_shell.run_cell_magic("omni_video", line, cell)
    assert generations(video_server) == before
