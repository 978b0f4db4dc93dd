"""The speech batch route, built and read without sockets; the request checked against vLLM-Omni 0.30.0's model."""

from __future__ import annotations

import base64
import json

import pytest

from vomni_nb.errors import BatchItemError, InvalidRequestError, ResponseFormatError
from vomni_nb.protocol.batch import build_speech_batch_request, parse_speech_batch
from vomni_nb.protocol.wav import pcm_to_wav
from vomni_nb.provenance import Provenance
from vomni_nb.results import SpeechResult
from tests.support.vllm_omni_models import load


def test_shared_fields_on_top_and_each_item_s_own() -> None:
    spec, items = build_speech_batch_request(
        ["Hello", {"text": "Bonjour", "voice": "serena", "language": "French"}, {"input": "Hi", "speed": 1.5}],
        {"voice": "vivian", "response_format": "wav", "speed": None}, model="m")
    assert spec.path == "/v1/audio/speech/batch" and spec.json["voice"] == "vivian" and spec.json["model"] == "m"
    assert spec.json["items"] == [{"input": "Hello"}, {"input": "Bonjour", "voice": "serena", "language": "French"},
                                  {"input": "Hi", "speed": 1.5}]
    assert [item.params["voice"] for item in items] == ["vivian", "serena", "vivian"]
    assert items[2].params == {"input": "Hi", "model": "m", "voice": "vivian", "response_format": "wav", "speed": 1.5}
    load("audio").BatchSpeechRequest.model_validate(spec.json)  # 0.30.0's own request model takes it


def test_ref_audio_travels_as_a_data_url_and_stays_out_of_the_record() -> None:
    clip = pcm_to_wav(b"\0\0" * 10, 24000)
    spec, items = build_speech_batch_request(["a"], {"ref_audio": clip, "ref_text": "a"})
    assert spec.json["ref_audio"].startswith("data:audio/wav;base64,") and "ref_audio" not in items[0].params
    spec, items = build_speech_batch_request(["a"], {"ref_audio": "https://h/v.wav", "ref_text": "a"})
    assert items[0].params["ref_audio"] == "https://h/v.wav"  # a URL can be sent again


@pytest.mark.parametrize(("items", "shared", "match"), [
    ([], {}, "non-empty list"),
    ("Hello", {}, "non-empty list"),
    ([{"voice": "x"}], {}, "Batch item 1 has no 'text'"),  # counted from 1, as the displayed list is
    ([{"text": "a", "vocie": "x"}], {}, r"Batch item 1 takes no 'vocie'; valid names: text, voice"),
    (["a", ""], {}, "text is empty"),
    (["a"], {"response_format": "aac"}, "speech format"),
    ([{"text": "a", "speed": 9}], {}, "speed must be from"),
    (["a", 3], {}, "Batch item 2 must be a text or a dict"),
])
def test_bad_input_fails_before_sending(items: object, shared: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match):
        build_speech_batch_request(items, shared)  # type: ignore[arg-type]


def test_each_result_in_its_place_a_failure_as_a_typed_error() -> None:
    wav = pcm_to_wav(b"\1\0" * 240, 24000)
    body = {"id": "speech-batch-1", "total": 3, "succeeded": 1, "failed": 2, "results": [
        {"index": 1, "status": "error", "error": "Speech generation failed: boom"},
        {"index": 3, "status": "error", "error": "Invalid voice 'x'. Supported: a, b"},
        {"index": 0, "status": "success", "audio_data": base64.b64encode(wav).decode(), "media_type": "audio/wav",
         "usage": {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}},
    ]}
    provenances = [Provenance(kind="speech", prompt=text) for text in ("one", "two", "three", "four")]
    out = parse_speech_batch(json.dumps(body).encode(), provenances, ["wav"] * 4, url="http://h/v1/audio/speech/batch")
    assert isinstance(out[0], SpeechResult) and out[0].frames == 240 and out[0].usage["total_tokens"] == 5
    assert out[0].text == "one"
    assert isinstance(out[1], BatchItemError) and out[1].index == 1 and out[1].input == "two"
    assert "Item 2 of the batch failed: Speech generation failed: boom." in str(out[1]) and "%omni_server logs" in str(out[1])
    assert isinstance(out[2], BatchItemError) and "no result" in out[2].reason
    assert isinstance(out[3], BatchItemError) and out[3].advice.startswith("Check this item's parameters")
    with pytest.raises(ResponseFormatError):
        parse_speech_batch(b'{"id": "x"}', provenances, ["wav"] * 3)
