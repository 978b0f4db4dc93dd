"""The openai SDK's speech calls against vomni-sim, as a notebook user would make them."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import openai
import pytest

from tests.support.sims import TTS_MODEL, SimHandle


@pytest.fixture(scope="module")
def sdk(tts_server: SimHandle) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=tts_server.url + "/v1", api_key="unused", max_retries=0) as client:
        yield client


def test_create_returns_a_wav(sdk: openai.OpenAI) -> None:
    response = sdk.audio.speech.create(model=TTS_MODEL, voice="vivian", input="Hello from the SDK.")
    assert response.response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        assert wav.getnframes() > 24000 * 0.5


@pytest.mark.parametrize(("fmt", "content_type"), [("mp3", "audio/mpeg"), ("flac", "audio/flac"), ("opus", "audio/ogg")])
def test_create_in_other_formats(sdk: openai.OpenAI, fmt: str, content_type: str) -> None:
    response = sdk.audio.speech.create(model=TTS_MODEL, voice="ryan", input="Format test.", response_format=fmt)  # type: ignore[arg-type]
    assert response.response.headers["content-type"] == content_type and len(response.content) > 500


def test_streaming_response_streams_raw_pcm(sdk: openai.OpenAI) -> None:
    whole = sdk.audio.speech.create(model=TTS_MODEL, voice="eric", input="Streaming through the SDK now.",
                                    response_format="pcm").content
    with sdk.audio.speech.with_streaming_response.create(
        model=TTS_MODEL, voice="eric", input="Streaming through the SDK now.", response_format="pcm",
        extra_body={"stream_format": "audio"},
    ) as response:
        assert response.headers["content-type"] == "audio/pcm"
        chunks = list(response.iter_bytes())
    assert b"".join(chunks) == whole


def test_sdk_errors_carry_the_server_message(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        sdk.audio.speech.create(model="someone/else", voice="ryan", input="x")
    assert "The model `someone/else` does not exist." in str(not_found.value)
    with pytest.raises(openai.BadRequestError) as bad_voice:
        sdk.audio.speech.create(model=TTS_MODEL, voice="alloy", input="x")
    assert bad_voice.value.body == {  # the SDK hands over the inner error object
        "message": "Invalid voice 'alloy'. Supported: aiden, dylan, eric, ono_anna, ryan, serena, sohee, uncle_fu, vivian",
        "type": "BadRequestError", "param": None, "code": 400,
    }
