"""A result's recipe goes back into the twin that made it (``vomni_nb.image(**result.recipe)``) and into the
client method it names (``getattr(client, p.method)(**p.recipe)``), against real simulators: the same seed
and settings give the same bytes. A recipe uses the client's names (``output_format``, ``response_format``,
``num_frames``), which the twins take besides their own; both spellings with different values are refused
before anything is sent."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

import vomni_nb
from tests.support.magics import generations
from vomni_nb.client import OmniClient
from vomni_nb.errors import InvalidRequestError


def _png(color: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("via", ["images", "chat"])
def test_an_images_recipe_makes_the_same_image_again(image_server: Any, via: str) -> None:
    fmt = "jpeg" if via == "images" else "png"  # through chat an image is always PNG
    first = vomni_nb.image("a red kite", server=image_server.url, size="32x32", steps=2, guidance=3.5,
                           negative="blur", seed=5, format=fmt, via=via, status=False)  # type: ignore[arg-type]
    assert first.recipe["output_format"] == fmt and first.recipe["seed"] == 5  # the client's names
    again = vomni_nb.image(**first.recipe, server=image_server.url, status=False)
    assert (again.data, again.format, again.seed) == (first.data, fmt, 5)
    with OmniClient(image_server.url) as client:
        assert getattr(client, first.provenance.method)(**first.recipe).data == first.data


def test_an_edits_recipe_with_the_same_picture_makes_the_same_edit(edit_server: Any) -> None:
    picture = _png("navy")
    first = vomni_nb.edit(picture, "make it glow", server=edit_server.url, seed=4, format="webp", status=False)
    assert first.recipe["output_format"] == "webp" and "image" not in first.recipe  # the input is not kept
    again = vomni_nb.edit(picture, **first.recipe, server=edit_server.url, status=False)
    assert (again.data, again.format) == (first.data, "webp")
    with OmniClient(edit_server.url) as client:
        assert client.edit(picture, **first.recipe).data == first.data


def test_a_speech_recipe_speaks_the_same_audio_again(tts_server: Any) -> None:
    first = vomni_nb.speak("A kite in the wind.", server=tts_server.url, voice="aiden", format="flac", speed=1.25,
                           seed=3, status=False)
    assert first.recipe["response_format"] == "flac" and first.recipe["text"] == "A kite in the wind."
    again = vomni_nb.speak(**first.recipe, server=tts_server.url, status=False)
    assert (again.audio, again.format, again.voice) == (first.audio, "flac", "aiden")
    with OmniClient(tts_server.url) as client:
        assert getattr(client, first.provenance.method)(**first.recipe).audio == first.audio


def test_a_video_recipe_makes_the_same_clip_again(video_server: Any) -> None:
    first = vomni_nb.video("a paper boat", server=video_server.url, size="64x64", frames=5, fps=4, steps=2, seed=9,
                           poll_interval=0.05, status=False)
    assert first.recipe["num_frames"] == 5  # the client's name for frames
    again = vomni_nb.video(**first.recipe, server=video_server.url, poll_interval=0.05, status=False)
    assert (again.data, again.num_frames, again.seed) == (first.data, 5, 9)


def test_a_chat_recipe_asks_the_same_question_again(omni_server: Any) -> None:
    first = vomni_nb.Conversation(server=omni_server.url).send("What is a lighthouse?", seed=2, max_tokens=40,
                                                               status=False)
    again = vomni_nb.Conversation(server=omni_server.url).send(**first.recipe, status=False)
    assert again.text == first.text and again.params["seed"] == 2


@pytest.mark.parametrize(("fixture", "make", "reason"), [
    ("image_server", lambda url: vomni_nb.image("a kite", server=url, format="png", output_format="jpeg"),
     "Give format= or output_format= .*not both; got 'png' and 'jpeg'"),
    ("edit_server", lambda url: vomni_nb.edit(_png("red"), "glow", server=url, format="png", output_format="webp"),
     "Give format= or output_format="),
    ("tts_server", lambda url: vomni_nb.speak("hi", server=url, format="wav", response_format="flac"),
     "Give format= or response_format="),
    ("video_server", lambda url: vomni_nb.video("a boat", server=url, frames=5, num_frames=9),
     "Give frames= or num_frames="),
])
def test_both_spellings_with_different_values_are_refused_before_any_request(
        request: pytest.FixtureRequest, fixture: str, make: Any, reason: str) -> None:
    server = request.getfixturevalue(fixture)
    before = generations(server)
    with pytest.raises(InvalidRequestError, match=reason):
        make(server.url)
    assert generations(server) == before


def test_the_same_value_under_both_names_is_one_setting(image_server: Any) -> None:
    made = vomni_nb.image("a kite", server=image_server.url, size="32x32", seed=1, format="webp",
                          output_format="webp", status=False)
    assert made.format == "webp"
