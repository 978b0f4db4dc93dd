"""Issue 14 item 11: values that used to raise inside the simulator (500 with Python's exception text).

Each one now gets a 400 in one of 0.30.0's error shapes, or a normal answer where the value is harmless.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.attacks import error_of, launch_many, wav_bytes
from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, TTS_MODEL, VIDEO_MODEL, SimHandle

CHAT = "/v1/chat/completions"
USER = [{"role": "user", "content": "a lighthouse"}]


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SimHandle]]:
    started = launch_many((IMAGE_MODEL, OMNI_MODEL, TTS_MODEL, VIDEO_MODEL), log_dir=tmp_path_factory.mktemp("bad"))
    yield started
    for handle in started.values():
        handle.stop()
        assert "Traceback" not in handle.log() and "Unexpected" not in handle.log()


def _zero_hz_wav() -> str:
    data = bytearray(wav_bytes(0.5))
    struct.pack_into("<I", data, 24, 0)  # sample rate 0: its length is samples / 0
    return base64.b64encode(bytes(data)).decode()


CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    (IMAGE_MODEL, CHAT, {"json": {"messages": USER, "guidance_scale": "x"}}, 400,
     "guidance_scale must be a number, got 'x'."),
    (IMAGE_MODEL, CHAT, {"json": {"messages": USER, "num_inference_steps": 1.5}}, 400,
     "num_inference_steps must be an integer, got '1.5'."),
    (IMAGE_MODEL, CHAT, {"json": {"messages": USER, "width": 64, "height": 10**400}}, 400,
     "height must be at most 8192 on vomni-sim (--max-side)"),
    (IMAGE_MODEL, CHAT, {"json": {"messages": USER, "extra_body": {"modalities": [{}]}}}, 400,
     "modalities must be a list of strings"),
    (IMAGE_MODEL, CHAT, {"json": {"messages": [{"role": "user", "content": [{"type": "image_url",
                                                                               "image_url": "not an object"}]}],
                                  "size": "64x64"}}, 200, ""),
    (IMAGE_MODEL, "/v1/images/generations", {"json": {"prompt": "p", "size": "9" * 400 + "x1"}}, 400,
     "Requested image size"),
    (IMAGE_MODEL, "/v1/images/generations", {"content": b'{"prompt": "half a pair \\ud800", "size": "64x64"}',
                                             "headers": {"Content-Type": "application/json"}}, 400,
     "lone UTF-16 surrogate"),
    (TTS_MODEL, "/v1/audio/speech", {"content": b'{"input": "hi", "voice": "\\udc00"}',
                                     "headers": {"Content-Type": "application/json"}}, 400, "lone UTF-16 surrogate"),
    (OMNI_MODEL, CHAT, {"json": {"messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": _zero_hz_wav(), "format": "wav"}}]}],
        "modalities": ["text"]}}, 200, ""),
    (OMNI_MODEL, CHAT, {"json": {"messages": USER, "modalities": ["text", "audio"], "audio": {"format": ["wav"]}}},
     400, "Invalid audio format"),
    (TTS_MODEL, "/v1/audio/voices", {"data": {"name": "huge", "consent": "c",
                                              "speaker_embedding": json.dumps([10**400] * 2048)}}, 400,
     "'speaker_embedding' values must be finite (no NaN or Inf)"),
    (OMNI_MODEL, "/v1/audio/voices", {"data": {"name": "inf", "consent": "c", "speaker_embedding": "[1e308, 1e308]"}},
     200, ""),  # finite values whose sum overflows
    (TTS_MODEL, "/v1/audio/voices", {"data": {"name": "deep", "consent": "c",
                                              "speaker_embedding": "[" * 100_000 + "]" * 100_000}}, 400,
     "'speaker_embedding' must be valid JSON"),
    (TTS_MODEL, "/v1/audio/speech", {"content": b'{"input": "hi", "speed": 1e400}',
                                     "headers": {"Content-Type": "application/json"}}, 400, "validation error"),
    (VIDEO_MODEL, "/v1/videos", {"data": {"prompt": "p", "seconds": "9" * 400}}, 400, "(--max-video-pixel-frames)"),
    (VIDEO_MODEL, "/v1/videos", {"data": {"prompt": "p", "seconds": "9", "fps": "1e18"}}, 400,
     "(--max-video-pixel-frames)"),
    (VIDEO_MODEL, "/v1/videos/sync", {"data": {"prompt": "p", "size": "9" * 5000 + "x2"}}, 400, "(--max-side)"),
]


@pytest.mark.parametrize(("model", "path", "kwargs", "status", "message"), CASES,
                         ids=[f"{m.split('/')[1][:8]}-{p.rsplit('/', 1)[1]}-{i}" for i, (m, p, *_) in enumerate(CASES)])
def test_bad_values_are_answered_not_raised(
    sims: dict[str, SimHandle], model: str, path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    response = httpx.post(sims[model].url + path, timeout=60, **kwargs)
    if status == 200:
        assert response.status_code == 200, response.text[:500]
        return
    assert message in error_of(response, status)["message"]


def test_unexpected_errors_do_not_leak_exception_text() -> None:
    """The last-resort handler names the exception type only; paths and details go to the log."""
    import asyncio

    from starlette.requests import Request

    from vomni_nb.sim import app as sim_app

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    response = asyncio.run(sim_app._on_unexpected(Request(scope), OSError("/home/someone/.secret: denied")))
    body = json.loads(bytes(response.body))
    assert response.status_code == 500 and "/home/someone" not in body["error"]["message"]
    assert body["error"]["message"] == "vomni-sim hit an unexpected OSError; the server log has the details."
