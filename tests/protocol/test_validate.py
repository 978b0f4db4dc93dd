"""Input validation happens before sending and explains itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol import build as B
from vomni_nb.protocol.validate import (
    check_prompt,
    check_seed,
    format_size,
    image_output_format,
    parse_size,
    speech_format,
)

sides = st.integers(min_value=1, max_value=16384)


@given(sides, sides, st.sampled_from(["x", "X", " x ", "×"]))
def test_size_strings_round_trip(width: int, height: int, sep: str) -> None:
    assert parse_size(f"{width}{sep}{height}") == (width, height)
    assert format_size((width, height)) == f"{width}x{height}"


@given(st.text(max_size=20))
def test_size_parser_never_raises_anything_but_our_error(text: str) -> None:
    try:
        width, height = parse_size(text)
    except InvalidRequestError as exc:
        assert "size" in str(exc)
    else:
        assert 1 <= width <= 16384 and 1 <= height <= 16384


@pytest.mark.parametrize("bad", ["1024", "0x64", "64x", "ax64", "64x64x64", "-64x64", (64,), (64, 0), (True, 64), 64])
def test_bad_sizes_are_refused(bad: object) -> None:
    with pytest.raises(InvalidRequestError, match="size"):
        parse_size(bad)  # type: ignore[arg-type]


def test_ranges_and_formats() -> None:
    with pytest.raises(InvalidRequestError, match="n must be from 1 to 10"):
        B.build_image_request("cat", n=11)
    with pytest.raises(InvalidRequestError, match="steps must be from 1 to 200"):
        B.build_image_request("cat", steps=0)
    with pytest.raises(InvalidRequestError, match="guidance must be from 0.0 to 20.0"):
        B.build_image_request("cat", guidance=20.5)
    with pytest.raises(InvalidRequestError, match="output format"):
        B.build_image_request("cat", output_format="gif")
    assert image_output_format("JPG") == "jpeg"
    with pytest.raises(InvalidRequestError, match="prompt is empty"):
        B.build_image_request("   ")
    with pytest.raises(InvalidRequestError, match="must be a string"):
        check_prompt(None)


def test_seeds_must_fit_int64() -> None:
    assert check_seed(2**63 - 1) == 2**63 - 1
    assert check_seed(-(2**63)) == -(2**63)
    for bad in (2**63, -(2**63) - 1, 1.5, "7", True):
        with pytest.raises(InvalidRequestError, match="seed"):
            check_seed(bad)


def test_speech_formats_and_streaming() -> None:
    for fmt in ("wav", "pcm", "flac", "mp3", "opus"):
        assert speech_format(fmt, streaming=False) == fmt
    with pytest.raises(InvalidRequestError, match="aac"):
        speech_format("aac", streaming=False)
    with pytest.raises(InvalidRequestError, match="streamed speech must be wav or pcm"):
        B.build_speech_request("hello", response_format="mp3", stream_mode="audio")
    with pytest.raises(InvalidRequestError, match="speed must be from 0.25 to 4.0"):
        B.build_speech_request("hello", speed=5)
    with pytest.raises(InvalidRequestError, match="text is empty"):
        B.build_speech_request("")
    with pytest.raises(InvalidRequestError, match="stream mode"):
        B.build_speech_request("hi", stream_mode="websocket")


def test_other_builders_validate() -> None:
    with pytest.raises(InvalidRequestError, match="at least one input image"):
        B.build_edit_request("blue", [])
    with pytest.raises(InvalidRequestError, match="No such file"):
        B.build_edit_request("blue", ["/nonexistent/picture.png"])
    with pytest.raises(InvalidRequestError, match="consent is required"):
        B.build_voice_upload("me", b"RIFF", consent=" ")
    with pytest.raises(InvalidRequestError, match="modalities"):
        B.build_chat_request("hi", modalities=["smell"])
    with pytest.raises(InvalidRequestError, match="messages is empty"):
        B.build_chat_request([])
    with pytest.raises(InvalidRequestError, match="seconds"):
        B.build_video_request("boat", seconds=0)
