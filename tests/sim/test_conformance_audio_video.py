"""vomni-sim's speech and video answers checked against vLLM-Omni 0.30.0's own pydantic models."""

from __future__ import annotations

import json
import re
import time
import types
from typing import Any

import httpx
import pydantic
import pytest

from tests.support.sims import VIDEO_MODEL, SimHandle
from tests.support.vllm_omni_models import available, load

pytestmark = pytest.mark.skipif(not available(), reason="vllm-omni==0.30.0 (--no-deps) is not installed")

def protocol(name: str) -> types.ModuleType:
    return load(name)


SPEECH_BODIES: list[dict[str, Any]] = [
    {"input": "hello"},
    {"input": "hello", "voice": {"id": "ryan"}},
    {"input": "hello", "voice": {"name": "ryan"}},
    {"input": "hello", "speaker": "vivian"},
    {"input": "hello", "response_format": "aac"},
    {"input": "hello", "response_format": "opus"},
    {"input": "hello", "speed": 4.0},
    {"input": "hello", "speed": 4.01},
    {"input": "hello", "speed": 0.2},
    {"input": "hello", "sample_rate": -1},
    {"input": "hello", "stream": True},
    {"input": "hello", "stream": True, "response_format": "flac"},
    {"input": "hello", "stream_format": "audio", "response_format": "pcm"},
    {"input": "hello", "stream_format": "sse", "response_format": "mp3"},
    {"input": "hello", "stream_format": "binary"},
    {"input": "hello", "task_type": "Clone"},
    {"input": "hello", "max_new_tokens": 0},
    {"input": "hello", "duration_seconds": -1},
    {"input": "hello", "seed": 2**63},
    {"input": "hello", "ref_audio": []},
    {"input": "hello", "extra_params": [1]},
    {"voice": "ryan"},
    {"input": 5},
]


@pytest.mark.parametrize("body", SPEECH_BODIES, ids=lambda b: json.dumps(b)[:60])
def test_speech_request_validation_matches_the_real_model(tts_server: SimHandle, body: dict[str, Any]) -> None:
    audio = protocol("audio")
    try:
        audio.OpenAICreateSpeechRequest(**body)
        real_rejects = False
    except (pydantic.ValidationError, ValueError, TypeError):
        real_rejects = True
    response = httpx.post(tts_server.url + "/v1/audio/speech", json=body, timeout=30)
    sim_rejects = response.status_code == 400 and response.json()["error"]["type"] == "Bad Request"
    assert sim_rejects == real_rejects, response.text


def test_sse_usage_is_a_speech_token_usage(tts_server: SimHandle) -> None:
    audio = protocol("audio")
    text = httpx.post(tts_server.url + "/v1/audio/speech", json={"input": "usage please", "stream": True}).text
    done = json.loads(re.findall(r"event: speech\.audio\.done\ndata: (.*)\n\n", text)[0])
    usage = audio.SpeechTokenUsage.model_validate(done["usage"])
    assert usage.model_dump() == done["usage"]
    assert list(usage.model_dump()) == list(done["usage"])


BATCH_BODIES: list[dict[str, Any]] = [
    {"items": [{"input": "hello"}]},
    {"items": []},
    {"items": "hello"},
    {"input": "hello"},
    {"items": [{"text": "hello"}]},
    {"items": [{"input": "hello", "speaker": "ryan"}]},
    {"items": [{"input": "hello", "voice": {"id": "ryan"}}]},
    {"items": [{"input": "hello", "response_format": "aac"}]},
    {"items": [{"input": "hello"}], "response_format": None},
    {"items": [{"input": "hello", "response_format": None}]},
    {"items": [{"input": "hello", "speed": 0.2}]},
    {"items": [{"input": "hello"}], "speed": None},
    {"items": [{"input": "hello", "sample_rate": 0}]},
    {"items": [{"input": "hello", "ref_audio": ["data:,"]}]},
    {"items": [{"input": "hello", "task_type": "Clone"}]},
    {"items": [{"input": "hello", "max_new_tokens": 0}]},
    {"items": [{"input": "hello", "stream": True, "seed": "not checked"}]},
    {"items": [{"input": "hello"}], "stream": True, "speaker_embedding": "ignored"},
    {"items": [{"input": "hello"}], "initial_codec_chunk_frames": -1},
]


@pytest.mark.parametrize("body", BATCH_BODIES, ids=lambda b: json.dumps(b)[:60])
def test_speech_batch_validation_matches_the_real_model(tts_server: SimHandle, body: dict[str, Any]) -> None:
    audio = protocol("audio")
    try:
        audio.BatchSpeechRequest(**body)
        real_rejects = False
    except (pydantic.ValidationError, ValueError, TypeError):
        real_rejects = True
    response = httpx.post(tts_server.url + "/v1/audio/speech/batch", json=body, timeout=30)
    assert response.status_code in (200, 400), response.text
    sim_rejects = response.status_code == 400 and response.json()["error"]["type"] == "Bad Request"
    assert sim_rejects == real_rejects, response.text


def test_speech_batch_answer_is_a_batch_speech_response(tts_server: SimHandle) -> None:
    audio = protocol("audio")
    items = [{"input": "one"}, {"input": "two [[fail]]"}, {"input": "three", "response_format": "mp3"},
             {"input": "four", "voice": "nobody"}]
    body = httpx.post(tts_server.url + "/v1/audio/speech/batch", json={"items": items}, timeout=60).json()
    parsed = audio.BatchSpeechResponse.model_validate(body)
    # The route serialises with exclude_none: every key present, none of them null, in the model's order.
    assert parsed.model_dump(exclude_none=True) == body
    assert [list(r) for r in parsed.model_dump(exclude_none=True)["results"]] == [list(r) for r in body["results"]]
    assert [r.status for r in parsed.results] == ["success", "error", "success", "error"]
    assert (parsed.total, parsed.succeeded, parsed.failed) == (4, 2, 2)
    assert parsed.results[2].media_type == "audio/mpeg"


def _job(url: str, **fields: str) -> dict[str, Any]:
    return dict(httpx.post(url + "/v1/videos", data={"prompt": "conformance", **fields}).json())


def _until(url: str, video_id: str, status: str) -> httpx.Response:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}/v1/videos/{video_id}")
        if response.json()["status"] == status:
            return response
        time.sleep(0.02)
    raise AssertionError(f"{video_id} never reached {status}")


def _same_as_model(model: type[pydantic.BaseModel], payload: dict[str, Any]) -> None:
    parsed = model.model_validate(payload)
    assert parsed.model_dump(mode="json") == payload  # every key, same values
    assert list(parsed.model_dump(mode="json")) == list(payload)  # same order


def test_video_jobs_are_video_responses(video_server: SimHandle) -> None:
    videos = protocol("videos")
    created = _job(video_server.url, size="64x48", num_frames="3", seconds="2")
    _same_as_model(videos.VideoResponse, created)
    _same_as_model(videos.VideoResponse, _until(video_server.url, created["id"], "completed").json())
    failed = _job(video_server.url, prompt="[[fail]]", size="64x48", num_frames="3")
    _same_as_model(videos.VideoResponse, _until(video_server.url, failed["id"], "failed").json())
    listing = httpx.get(video_server.url + "/v1/videos", params={"limit": 2}).json()
    _same_as_model(videos.VideoListResponse, listing)
    deleted = httpx.delete(f"{video_server.url}/v1/videos/{created['id']}").json()
    _same_as_model(videos.VideoDeleteResponse, deleted)


def test_a_finished_wan_job_is_a_video_response_with_its_real_frame_count(video_server: SimHandle) -> None:
    videos = protocol("videos")
    created = _job(video_server.url, size="64x64", seconds="1", fps="8")
    # At creation the record is video_response_from_request's: int(seconds * fps) frames.
    assert videos.VideoResponse.model_validate(created).num_frames == 8
    done = videos.VideoResponse.model_validate(_until(video_server.url, created["id"], "completed").json())
    # On completion the clip's metadata overwrites it: Wan made 4k+1 frames.
    assert (done.num_frames, done.duration_s, done.fps, done.seconds) == (9, 9 / 8, 8.0, "1")


def test_job_defaults_match_the_model_defaults(video_server: SimHandle) -> None:
    videos = protocol("videos")
    ours = _job(video_server.url)
    theirs = videos.VideoResponse(model=VIDEO_MODEL, prompt="conformance", fps=24.0).model_dump(mode="json")
    for key in ("id", "created_at"):
        ours.pop(key), theirs.pop(key)
    assert ours == theirs


VIDEO_FIELDS: list[dict[str, str]] = [
    {"num_inference_steps": "201"},
    {"num_inference_steps": "0"},
    {"guidance_scale": "20.5"},
    {"guidance_scale_2": "-1"},
    {"true_cfg_scale": "21"},
    {"boundary_ratio": "1.5"},
    {"quality": "medium"},
    {"quality": "lossless"},
    {"width": "0"},
    {"height": "-4"},
    {"num_frames": "0"},
    {"sound_duration": "0"},
    {"seed": "9223372036854775808"},
    {"flow_shift": "3.0"},
]


@pytest.mark.parametrize("fields", VIDEO_FIELDS, ids=lambda f: json.dumps(f))
def test_video_request_errors_match_the_real_model(video_server: SimHandle, fields: dict[str, str]) -> None:
    videos = protocol("videos")
    form_types = {"num_inference_steps": int, "guidance_scale": float, "guidance_scale_2": float, "true_cfg_scale": float,
                  "boundary_ratio": float, "width": int, "height": int, "num_frames": int, "sound_duration": float,
                  "seed": int, "flow_shift": float, "quality": str}
    typed = {key: form_types[key](value) for key, value in fields.items()}
    response = httpx.post(video_server.url + "/v1/videos/sync",
                          data={"prompt": "x", "size": "64x48", "num_frames": "2", **fields}, timeout=30)
    try:
        videos.VideoGenerationRequest(prompt="x", **typed)
    except pydantic.ValidationError as exc:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        if error["type"] == "Bad Request":  # the form layer caught it first (e.g. sound_duration)
            assert error["message"].startswith("1 validation error:\n") and error["param"] == f"body.{next(iter(fields))}"
        else:
            assert error == {"message": str(exc), "type": "BadRequestError", "param": None, "code": 400}
    else:
        assert response.status_code == 200, response.text
