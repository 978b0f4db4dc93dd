"""The speech twins from plain Python: no IPython, real simulators, files saved and never overwritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import vomni_nb
from tests.support.magics import generations
from vomni_nb.errors import BatchItemError, InvalidRequestError
from vomni_nb.results import SpeechResult
from vomni_nb.speech import SpeechBatch, VoiceList, list_voices


def test_speak_makes_saves_and_returns(tts_server: Any, tmp_path: Path) -> None:
    first = vomni_nb.speak("A kite in the wind.", server=tts_server.url, voice="aiden", seed=3, save=tmp_path)
    again = vomni_nb.speak("A kite in the wind.", server=tts_server.url, voice="aiden", seed=3, save=tmp_path,
                           format="flac")
    assert isinstance(first, SpeechResult) and first.voice == "aiden" and first.format == "wav"
    assert again.format == "flac" and first.params["seed"] == 3
    audio = sorted(path.suffix for path in tmp_path.iterdir() if path.suffix != ".json")  # each has a recipe sidecar
    assert audio == [".flac", ".wav"]


def test_a_stream_outside_a_kernel_is_read_quietly_and_returns_the_result(tts_server: Any) -> None:
    before = generations(tts_server)
    speech = vomni_nb.speak("Streamed, with nobody watching.", server=tts_server.url, stream=True)
    assert speech.format == "pcm" and speech.frames and speech.text == "Streamed, with nobody watching."
    assert generations(tts_server) == before + 1


def test_a_batch_is_one_request_that_keeps_its_order_and_a_failed_item_in_place(tts_server: Any,
                                                                                tmp_path: Path) -> None:
    posts = tts_server.log().count("POST /v1/audio/speech/batch")
    batch = vomni_nb.speak_batch(["one", "two [[fail]]", "three"], server=tts_server.url, save=tmp_path)
    assert tts_server.log().count("POST /v1/audio/speech/batch") == posts + 1  # the batch route, not a loop
    assert isinstance(batch, SpeechBatch) and repr(batch) == "SpeechBatch(2 utterances, 1 failed)"  # spoken, failed
    assert [item.text for item in batch.results] == ["one", "three"] and isinstance(batch[1], BatchItemError)
    assert batch[1].index == 1 and batch[1].input == "two [[fail]]"
    assert len([path for path in tmp_path.iterdir() if path.suffix == ".wav"]) == 2
    data, metadata = batch._repr_mimebundle_()
    assert data["text/html"].count("<audio controls") == 2 and len(metadata["vomni_nb"]["items"]) == 3
    # One numbering, the one the list shows: the second line is "2." and its error says "Item 2".
    assert "\n2. ✗ Item 2 of the batch failed: " in data["text/plain"] and "Item 2 of the batch" in data["text/html"]


@pytest.mark.parametrize(("call", "reason"), [
    (lambda url: vomni_nb.speak(" ", server=url), "text is empty"),
    (lambda url: vomni_nb.speak("hi", server=url, format="aac"), "speech format must be one of"),
    (lambda url: vomni_nb.speak("hi", server=url, speed=5), "speed must be from 0.25"),
    (lambda url: vomni_nb.speak("hi", server=url, stream=True, format="mp3"), "streamed speech must be wav or pcm"),
    (lambda url: vomni_nb.speak("hi", server=url, stream=True, speed=2), "plays at speed 1.0"),
    (lambda url: vomni_nb.speak_batch("one string", server=url), "takes a list of texts"),
    (lambda url: vomni_nb.speak_batch(["fine", " "], server=url), "text 2 is empty"),
    (lambda url: vomni_nb.speak("hi", server=url, ref_audio="nowhere.wav", ref_text="hi"), "no such file"),
    (lambda url: vomni_nb.speak_batch(["hi"], server=url, ref_audio=b""), "ref_audio is empty"),
    (lambda url: vomni_nb.speech.upload_voice("v", b"RIFF", consent=" ", server=url), "consent is required"),
    (lambda url: vomni_nb.speech.upload_voice("v", "nowhere.wav", consent="yes", server=url), "no such file"),
])
def test_bad_arguments_fail_before_any_request(tts_server: Any, call: Any, reason: str) -> None:
    before = generations(tts_server), tts_server.log().count("/v1/audio/voices")
    with pytest.raises(InvalidRequestError, match=reason):
        call(tts_server.url)
    assert (generations(tts_server), tts_server.log().count("/v1/audio/voices")) == before


def test_the_voice_list_displays_itself(tts_server: Any) -> None:
    voices = list_voices(server=tts_server.url)
    assert isinstance(voices, VoiceList) and "vivian" in voices.names and voices.server_url == tts_server.url
    data, _ = voices._repr_mimebundle_()
    assert "<table>" in data["text/html"] and "built-in" in data["text/plain"]


def test_the_twins_are_exported_lazily() -> None:
    assert {"speak", "speak_batch"} <= set(vomni_nb.__all__)
    assert vomni_nb.speak.__module__ == vomni_nb.speak_batch.__module__ == "vomni_nb.speech"
