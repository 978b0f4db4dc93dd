"""Speech against real vomni-sim TTS servers: which checkpoint speaks what (issue 7 item 12), voice cloning
with ref_audio, and speak_batch (issue 13's client part) on both clients."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.errors import BadRequestError, BatchItemError, InvalidRequestError, WrongServerError
from vomni_nb.protocol.wav import parse_wav
from vomni_nb.results import SpeechResult
from tests.support.sims import TTS_MODEL

BASE_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
SAMPLE_TEXT = "This is my voice sample."


@pytest.fixture(scope="module")
def sample(tts_server) -> SpeechResult:  # type: ignore[no-untyped-def]
    with OmniClient(tts_server.url) as client:
        return client.speak(SAMPLE_TEXT, voice="vivian")


def test_plain_speech_on_a_base_checkpoint_is_refused_before_sending(start_sim) -> None:  # type: ignore[no-untyped-def]
    base = start_sim(BASE_MODEL)
    with OmniClient(base.url) as client:
        with pytest.raises(WrongServerError, match=r"is a Base \(voice-cloning\) checkpoint: give voice= an uploaded "
                                                   r"voice .*or ref_audio= .*CustomVoice checkpoint") as caught:
            client.speak("Hello")
        assert caught.value.task == "speech" and caught.value.model == BASE_MODEL
        assert "task_type" not in str(caught.value)  # no server jargon
        # A built-in voice is the server's to refuse (is it uploaded?): its jargon comes with our advice.
        with pytest.raises(WrongServerError, match="Base checkpoint does not support.*give voice= an uploaded") as named:
            client.speak("Hello", voice="vivian")
        assert isinstance(named.value.__cause__, BadRequestError)
    assert base.log().count("POST /v1/audio/speech") == 1  # only the one the server had to answer


def test_an_uploaded_voice_on_a_custom_voice_checkpoint(start_sim, sample) -> None:  # type: ignore[no-untyped-def]
    custom = start_sim(TTS_MODEL)
    with OmniClient(custom.url) as client:
        with pytest.warns(UserWarning, match=f"{TTS_MODEL} cannot speak with it.*need a Base checkpoint such as "
                                             f"{BASE_MODEL}"):
            client.voices.upload("mine", sample, consent="I recorded this myself", ref_text=SAMPLE_TEXT)
        with pytest.raises(WrongServerError, match=f"is a CustomVoice checkpoint: it speaks only its built-in voices.*"
                                                   f"need a Base checkpoint such as {BASE_MODEL}") as caught:
            client.speak("Hello", voice="mine")
        assert caught.value.advice.startswith(f"{TTS_MODEL} is a CustomVoice checkpoint")
        with pytest.raises(WrongServerError, match="CustomVoice checkpoint"):
            client.speak("Hello", ref_audio=sample, ref_text=SAMPLE_TEXT)  # refused before sending
    assert custom.log().count("POST /v1/audio/speech") == 1  # the uploaded voice: the server had to say


def test_ref_audio_clones_a_voice_on_a_base_checkpoint(start_sim, sample, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = start_sim(BASE_MODEL)
    path = sample.save(tmp_path / "me.wav")
    with OmniClient(base.url) as client:
        cloned = client.speak("Hello in my voice", ref_audio=path, ref_text=SAMPLE_TEXT, seed=1)
        assert parse_wav(cloned.audio).frames and cloned.params["ref_text"] == SAMPLE_TEXT
        assert "ref_audio" not in cloned.params  # inline audio stays out of the record (and the notebook)
        again = client.speak("Hello in my voice", ref_audio=sample, ref_text=SAMPLE_TEXT, seed=1)
        assert again.audio == cloned.audio  # a path or a result: the same sample
        with pytest.raises(InvalidRequestError, match="ref_audio needs ref_text="):
            client.speak("Hello", ref_audio=sample)
        with pytest.raises(InvalidRequestError, match="ref_audio must be audio"):
            client.speak("Hello", ref_audio=b"\x89PNG\r\n\x1a\n", ref_text="x")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a Base server speaks uploaded voices: no warning
            client.voices.upload("mine", sample, consent="I recorded this myself", ref_text=SAMPLE_TEXT)
        assert parse_wav(client.speak("Hello", voice="mine").audio).frames
        streamed = client.speak_stream("Hello", ref_audio=sample, ref_text=SAMPLE_TEXT, response_format="pcm")
        assert streamed.finish().audio


def test_speak_batch_keeps_each_item_in_its_place(tts_server) -> None:  # type: ignore[no-untyped-def]
    items = ["Hello there.", {"text": "This one [[fail]]s."}, {"text": "Bonjour.", "voice": "serena", "speed": 1.25}]
    with OmniClient(tts_server.url) as client:
        results = client.speak_batch(items, voice="vivian", response_format="wav")
        single = client.speak("Hello there.", voice="vivian")
    first, failed, third = results
    assert isinstance(first, SpeechResult) and isinstance(third, SpeechResult)
    assert first.voice == "vivian" and third.voice == "serena" and third.params["speed"] == 1.25
    assert first.text == "Hello there." and first.model == TTS_MODEL and first.usage["total_tokens"] > 0
    assert parse_wav(first.audio).pcm == parse_wav(single.audio).pcm  # the same speech as one request
    assert isinstance(failed, BatchItemError) and failed.index == 1 and failed.input == "This one [[fail]]s."
    assert "Item 2 of the batch failed" in str(failed) and "%omni_server logs" in str(failed)

    async def main() -> list[object]:
        async with AsyncOmniClient(tts_server.url) as client:
            return await client.speak_batch(items, voice="vivian")

    again = asyncio.run(main())
    assert [type(r) for r in again] == [SpeechResult, BatchItemError, SpeechResult]
    assert again[0].audio == first.audio  # type: ignore[union-attr]


def test_speak_batch_on_the_wrong_checkpoint_says_which(start_sim, tts_server) -> None:  # type: ignore[no-untyped-def]
    base = start_sim(BASE_MODEL)
    with OmniClient(base.url) as client, pytest.raises(WrongServerError, match="is a Base"):
        client.speak_batch(["Hello", "World"])
    assert "POST /v1/audio/speech/batch" not in base.log()
    with OmniClient(tts_server.url) as client:
        results = client.speak_batch(["Hello", {"text": "World", "voice": "nobody"}])
    assert isinstance(results[0], SpeechResult) and isinstance(results[1], BatchItemError)
    assert "Invalid voice 'nobody'" in results[1].reason and "Check this item's parameters" in str(results[1])
