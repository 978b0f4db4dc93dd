"""Every response shape parses; malformed bodies raise our errors, never KeyError/IndexError."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vomni_nb.errors import BadRequestError, ResponseFormatError, VomniError
from vomni_nb.protocol.parse import (
    parse_chat_json,
    parse_images_file,
    parse_images_json,
    parse_models,
    parse_speech,
    parse_video_job,
    video_result,
)
from vomni_nb.protocol.wav import pcm_to_wav
from vomni_nb.provenance import Provenance

PROVENANCE = Provenance(server_url="http://sim", model="m", params={"size": "8x4"}, seed=5, prompt="p")


def _png(width: int = 8, height: int = 4, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, fmt)
    return buffer.getvalue()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_images_json() -> None:
    body = {"created": 1, "data": [{"b64_json": _b64(_png()), "url": None, "revised_prompt": None},
                                   {"b64_json": _b64(_png(3, 3, "JPEG")), "url": None, "revised_prompt": None}],
            "output_format": "png", "size": "8x4", "cot_output": None, "metrics": {"peak_memory_mb": 1.5}}
    first, second = parse_images_json(json.dumps(body).encode(), PROVENANCE)
    assert (first.format, first.width, first.height, first.seed, first.index) == ("png", 8, 4, 5, 0)
    assert (second.format, second.width, second.index) == ("jpeg", 3, 1)
    assert first.metrics == {"peak_memory_mb": 1.5} and first.server_url == "http://sim"


def test_images_file_and_zip() -> None:
    (single,) = parse_images_file(_png(), "image/png", PROVENANCE)
    assert single.size == "8x4"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("image_0.png", _png(2, 2))
        zf.writestr("image_1.png", _png(5, 5))
    images = parse_images_file(archive.getvalue(), "application/zip", PROVENANCE)
    assert [i.width for i in images] == [2, 5]
    with pytest.raises(ResponseFormatError, match="ZIP"):
        parse_images_file(b"PK\x03\x04broken", "application/zip", PROVENANCE)


def _chat(message: dict, **choice_extra: object) -> bytes:  # type: ignore[type-arg]
    choice = {"index": 0, "message": {"role": "assistant", "content": None, "audio": None, **message},
              "finish_reason": "stop", **choice_extra}
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "m", "choices": [choice],
                       "usage": {"prompt_tokens": 3}, "metrics": None}).encode()


def test_chat_shapes() -> None:
    text = parse_chat_json(_chat({"content": "hello"}), PROVENANCE)
    assert text.text == "hello" and text.audio is None and text.usage == {"prompt_tokens": 3}
    url = "data:image/png;base64," + _b64(_png())
    items = [{"type": "image_url", "image_url": {"url": url}, "stage_durations": {}, "peak_memory_mb": 2.0}]
    image = parse_chat_json(_chat({"content": items}), PROVENANCE)
    assert image.text == "" and image.images[0].width == 8 and image.images[0].metrics["peak_memory_mb"] == 2.0
    wav = pcm_to_wav(b"\x01\x00" * 240, 24000)
    merged = parse_chat_json(
        _chat({"content": "hi", "audio": {"id": "audio-1", "data": _b64(wav), "expires_at": 0, "transcript": ""}},
              audio_metadata={"format": "wav", "sample_rate_hz": 24000, "frame_count": 240, "channels": 1}),
        PROVENANCE,
    )
    assert merged.text == "hi" and merged.audio == wav and merged.sample_rate == 24000
    assert merged.audio_duration_s == pytest.approx(0.01)
    text_parts = parse_chat_json(_chat({"content": [{"type": "text", "text": "no image"}]}), PROVENANCE)
    assert text_parts.text == "no image" and text_parts.images == ()


def test_error_object_in_a_200_body_raises_the_status_error() -> None:
    body = {"error": {"message": "The model does not support Chat Completions API", "type": "BadRequestError",
                      "param": None, "code": 400}}
    with pytest.raises(BadRequestError, match="does not support Chat") as caught:
        parse_chat_json(json.dumps(body).encode(), PROVENANCE)
    assert "%omni_server list" in str(caught.value)  # says where such a request should go


@pytest.mark.parametrize(
    "content",
    [
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>",
        b'{"choices": [{"message": {"content": "trunc',
        b"{}",
        b'{"choices": []}',
        b'{"choices": [{"message": "x"}]}',
        b'{"choices": [{"message": {"content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}]}}]}',
        b'{"choices": [{"message": {"content": [{"type": "image_url"}]}}]}',
        b'{"choices": [{"message": {"content": "", "audio": {"data": "not base64!"}}}]}',
    ],
)
def test_malformed_chat_bodies(content: bytes) -> None:
    with pytest.raises(ResponseFormatError):
        parse_chat_json(content, PROVENANCE)


@pytest.mark.parametrize(
    "content",
    [b"", b"<html>", b'{"data": []}', b'{"data": [{}]}', b'{"data": [{"b64_json": "???"}]}',
     b'{"data": [{"b64_json": "aGVsbG8="}]}', b'{"data": "x"}', b"[1, 2]"],
)
def test_malformed_image_bodies(content: bytes) -> None:
    with pytest.raises(ResponseFormatError):
        parse_images_json(content, PROVENANCE)


@settings(max_examples=200)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["data", "choices", "message", "content", "b64_json", "audio", "id",
                                         "status", "error", "type", "image_url", "url"]), inner, max_size=4),
                    max_leaves=12))
def test_arbitrary_json_never_escapes_as_a_builtin_error(body: object) -> None:
    content = json.dumps(body).encode()
    for parser in (lambda: parse_chat_json(content, PROVENANCE), lambda: parse_images_json(content, PROVENANCE),
                   lambda: parse_video_job(content), lambda: parse_models(content)):
        try:
            parser()
        except VomniError:
            pass


def test_speech_parsing_and_usage_headers() -> None:
    wav = pcm_to_wav(b"\0\0" * 2400, 24000)
    headers = {"x-vllm-omni-input-tokens": "3", "x-vllm-omni-output-tokens": "16", "x-vllm-omni-total-tokens": "19"}
    result = parse_speech(wav, headers, Provenance(prompt="hi", params={"voice": "vivian"}), "wav")
    assert (result.sample_rate, result.frames, result.voice) == (24000, 2400, "vivian")
    assert result.duration_s == pytest.approx(0.1)
    assert result.usage == {"input_tokens": 3, "output_tokens": 16, "total_tokens": 19}
    pcm = parse_speech(b"\0\0" * 100, {}, Provenance(params={"sample_rate": 16000}), "pcm")
    assert (pcm.sample_rate, pcm.frames) == (16000, 100)
    assert parse_speech(b"ID3...", {}, Provenance(), "mp3").sample_rate is None
    with pytest.raises(ResponseFormatError):
        parse_speech(b"", {}, Provenance(), "wav")
    with pytest.raises(ResponseFormatError):
        parse_speech(b"not a wav", {}, Provenance(), "wav")


def test_video_jobs_and_models() -> None:
    job = {"id": "video_gen_1", "status": "completed", "size": "64x32", "fps": 8.0, "num_frames": 8,
           "duration_s": 1.0, "metrics": None}
    assert parse_video_job(json.dumps(job).encode()) == job
    result = video_result(b"mp4", job, Provenance(prompt="boat", seed=3))
    assert (result.width, result.height, result.fps, result.seed, result.id) == (64, 32, 8.0, 3, "video_gen_1")
    with pytest.raises(ResponseFormatError, match="id/status"):
        parse_video_job(b'{"id": "x"}')
    assert parse_models(b'{"object": "list", "data": [{"id": "a"}, {"id": "b"}]}') == ["a", "b"]
    with pytest.raises(ResponseFormatError):
        parse_models(b'{"data": [{"name": "a"}]}')
