"""POST /v1/audio/speech/batch against a real vomni-sim (reference §3.10, issue 13 item 1)."""

from __future__ import annotations

import base64
import io
import re
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.sims import TTS_MODEL, SimHandle

pytestmark = pytest.mark.timeout(90)
BATCH = "/v1/audio/speech/batch"
SUCCESS_KEYS = ["index", "status", "audio_data", "media_type", "usage"]
ERROR_KEYS = ["index", "status", "error"]


@pytest.fixture(scope="module")
def client(tts_server: SimHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tts_server.url, timeout=60) as http:
        yield http


def batch(client: httpx.Client, *inputs: str | dict[str, Any], **shared: Any) -> httpx.Response:
    items = [item if isinstance(item, dict) else {"input": item} for item in inputs]
    return client.post(BATCH, json={"items": items, **shared})


def audio_of(result: dict[str, Any]) -> bytes:
    return base64.b64decode(result["audio_data"])


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and body["error"]["code"] == status
    return dict(body["error"])


def test_each_item_is_the_speech_of_its_own_request(client: httpx.Client) -> None:
    texts = ["Hello, how are you?", "Goodbye, see you later!", "A third one."]
    response = batch(client, *texts, voice="ryan")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["id", "results", "total", "succeeded", "failed"]
    assert re.fullmatch(r"speech-batch-[0-9a-f]{32}", body["id"])
    assert (body["total"], body["succeeded"], body["failed"]) == (3, 3, 0)
    assert [result["index"] for result in body["results"]] == [0, 1, 2]
    for text, result in zip(texts, body["results"]):
        assert list(result) == SUCCESS_KEYS and (result["status"], result["media_type"]) == ("success", "audio/wav")
        single = client.post("/v1/audio/speech", json={"input": text, "voice": "ryan"})
        assert audio_of(result) == single.content  # same request, same bytes
        assert result["usage"]["input_tokens"] == int(single.headers["x-vllm-omni-input-tokens"])
        with wave.open(io.BytesIO(audio_of(result))) as wav:
            assert (wav.getnchannels(), wav.getframerate()) == (1, 24000) and wav.getnframes() > 0
    assert response.headers["x-vomni-speech-engine"] in ("espeak-ng", "tones")


def test_an_items_own_fields_win_over_the_batch_defaults(client: httpx.Client) -> None:
    own = {"input": "Mine.", "voice": "vivian", "response_format": "pcm", "sample_rate": 8000, "speed": 2.0}
    results = batch(client, own, "Shared.", voice="ryan", response_format="flac", speed=0.5).json()["results"]
    assert results[0]["media_type"] == "audio/pcm" and results[1]["media_type"] == "audio/flac"
    alone = client.post("/v1/audio/speech", json=own)
    assert audio_of(results[0]) == alone.content
    shared = client.post("/v1/audio/speech", json={"input": "Shared.", "voice": "ryan", "response_format": "flac",
                                                   "speed": 0.5})
    assert audio_of(results[1]) == shared.content


def test_failed_items_are_reported_in_place(client: httpx.Client) -> None:
    response = batch(
        client,
        "Fine.",
        "This one breaks [[fail]]",
        {"input": "Who?", "voice": "nobody"},
        {"input": "   "},
        {"input": "Rate.", "sample_rate": 16000},
        {"input": "Clone me.", "task_type": "Base", "ref_audio": "data:audio/wav;base64,AAAA", "ref_text": "hi"},
        "Also fine.",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["succeeded"], body["failed"]) == (7, 2, 5)
    statuses = [(result["index"], result["status"]) for result in body["results"]]
    assert statuses == [(0, "success"), (1, "error"), (2, "error"), (3, "error"), (4, "error"), (5, "error"),
                        (6, "success")]
    errors = {result["index"]: result for result in body["results"] if result["status"] == "error"}
    assert all(list(result) == ERROR_KEYS for result in errors.values())
    assert errors[1]["error"] == "Simulated generation failure ([[fail]] in the input)."
    assert errors[2]["error"].startswith("Invalid voice 'nobody'. Supported: aiden, dylan, eric,")
    assert errors[3]["error"] == "Input text cannot be empty"
    assert errors[4]["error"] == "sample_rate=16000 is not supported by the current TTS model; supported rates: 8000, 24000"
    assert errors[5]["error"] == ("Qwen3-TTS CustomVoice checkpoint does not support task_type='Base'. "
                                  "Use task_type='CustomVoice' or load the matching Base checkpoint.")


def test_default_is_not_a_voice_in_a_batch(client: httpx.Client) -> None:
    # The single route maps voice "default" to the default speaker; the batch route does not.
    single = client.post("/v1/audio/speech", json={"input": "Hi.", "voice": "default"})
    assert single.status_code == 200
    result = batch(client, "Hi.", voice="default").json()["results"][0]
    assert result["status"] == "error" and result["error"].startswith("Invalid voice 'default'.")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"items": []}, "body.items"),
        ({"items": [{"voice": "ryan"}]}, "body.items.0.input"),
        ({"items": [{"input": "x", "speed": 5}]}, "body.items.0.speed"),
        ({"items": [{"input": "x"}], "response_format": "aac"}, "body.response_format"),
        ({"items": [{"input": "x", "ref_audio": ["a", "b"]}]}, "body.items.0.ref_audio"),
    ],
)
def test_a_malformed_batch_is_a_validation_error(client: httpx.Client, body: dict[str, Any], param: str) -> None:
    error = error_of(client.post(BATCH, json=body), 400)
    assert (error["type"], error["param"]) == ("Bad Request", param)


def test_request_level_refusals(client: httpx.Client) -> None:
    too_many = error_of(batch(client, *["x"] * 33), 400)
    assert too_many == {"message": "Batch contains 33 items, exceeding the maximum of 32.", "type": "Bad Request",
                        "param": None, "code": 400}
    wrong_model = error_of(batch(client, "x", model="Qwen/Other"), 404)
    assert wrong_model == {"message": "The model `Qwen/Other` does not exist.", "type": "NotFoundError",
                           "param": "model", "code": 404}
    assert batch(client, "x", model=TTS_MODEL).status_code == 200
    as_form = client.post(BATCH, data={"items": "x"})
    assert error_of(as_form, 400)["message"].endswith("Only 'application/json' is allowed")


def test_a_diffusion_server_refuses_batches(image_server: SimHandle) -> None:
    response = httpx.post(image_server.url + BATCH, json={"items": [{"input": "x"}]})
    assert error_of(response, 400) == {"message": "Batch speech is not supported in diffusion mode",
                                       "type": "Bad Request", "param": None, "code": 400}


def test_an_omni_server_fails_every_item_with_its_reason(omni_server: SimHandle) -> None:
    clone = {"input": "x", "task_type": "Base", "ref_audio": "data:audio/wav;base64,AAAA", "ref_text": "hi"}
    body = httpx.post(omni_server.url + BATCH, json={"items": [{"input": "x"}, clone]}, timeout=30).json()
    assert (body["succeeded"], body["failed"]) == (0, 2)
    first, second = (result["error"] for result in body["results"])
    assert first.startswith("This model does not support CustomVoice task (no speakers configured).")
    assert second.startswith("The /v1/audio/speech endpoint is only supported for dedicated TTS models")


def test_injected_faults_answer_for_the_whole_batch(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL, "--rate-503", "1", "--retry-after", "4")
    response = httpx.post(sim.url + BATCH, json={"items": [{"input": "x"}, {"input": "y"}]})
    assert (response.status_code, response.headers["retry-after"]) == (503, "4")
