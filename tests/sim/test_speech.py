"""POST /v1/audio/speech against a real vomni-sim: the three modes, every error of reference §3.9."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.sims import TTS_MODEL, SimHandle

SPEECH = "/v1/audio/speech"
LONG_TEXT = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)
MEDIUM_TEXT = " ".join(["The quick brown fox jumps over the lazy dog."] * 3)


@pytest.fixture(scope="module")
def client(tts_server: SimHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tts_server.url, timeout=30) as http:
        yield http


def speak(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post(SPEECH, json={"input": "Hello from the simulator.", **body})


def wav_pcm(data: bytes) -> tuple[bytes, int]:
    with wave.open(io.BytesIO(data)) as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert body["error"]["code"] == response.status_code
    return dict(body["error"])


# --- whole files -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type", "magic"),
    [("wav", "audio/wav", b"RIFF"), ("flac", "audio/flac", b"fLaC"), ("mp3", "audio/mpeg", None),
     ("opus", "audio/ogg", b"OggS"), ("pcm", "audio/pcm", None)],
)
def test_whole_file_in_each_format(client: httpx.Client, fmt: str, content_type: str, magic: bytes | None) -> None:
    response = speak(client, response_format=fmt, voice="vivian")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert int(response.headers["content-length"]) == len(response.content) > 1000
    if magic:
        assert response.content.startswith(magic)
    assert response.headers["x-vomni-speech-engine"] in ("espeak-ng", "tones")


def test_usage_headers_count_text_and_audio(client: httpx.Client) -> None:
    short = speak(client, input="Hi.")
    long = speak(client, input=LONG_TEXT)
    for response in (short, long):
        h = response.headers
        assert int(h["x-vllm-omni-total-tokens"]) == int(h["x-vllm-omni-input-tokens"]) + int(h["x-vllm-omni-output-tokens"])
        assert h["x-vllm-omni-input-text-tokens"] == h["x-vllm-omni-input-tokens"]
        assert h["x-vllm-omni-input-audio-tokens"] == "0"
    assert int(long.headers["x-vllm-omni-output-tokens"]) > 10 * int(short.headers["x-vllm-omni-output-tokens"])
    pcm, rate = wav_pcm(long.content)
    assert rate == 24000
    assert int(long.headers["x-vllm-omni-output-tokens"]) == pytest.approx(len(pcm) / 2 / rate * 12.5, abs=1)


def test_same_request_same_audio_and_voices_differ(client: httpx.Client) -> None:
    first = speak(client, voice="ryan", seed=3).content
    assert speak(client, voice="ryan", seed=3).content == first
    assert speak(client, voice="sohee", seed=3).content != first


@pytest.mark.parametrize("voice", ["default", "DEFAULT", {"id": "Aiden"}, None])
def test_voice_forms_accepted(client: httpx.Client, voice: object) -> None:
    assert speak(client, voice=voice).status_code == 200


def test_speaker_alias_and_unknown_keys(client: httpx.Client) -> None:
    by_speaker = client.post(SPEECH, json={"input": "alias", "speaker": "eric", "no_such_field": 1})
    by_voice = client.post(SPEECH, json={"input": "alias", "voice": "eric"})
    assert by_speaker.status_code == 200 and by_speaker.content == by_voice.content


def test_sample_rate_and_speed(client: httpx.Client) -> None:
    normal = speak(client, input=LONG_TEXT)
    low = speak(client, input=LONG_TEXT, sample_rate=8000)
    fast = speak(client, input=LONG_TEXT, speed=2.0)
    pcm, rate = wav_pcm(low.content)
    normal_pcm, _ = wav_pcm(normal.content)
    fast_pcm, _ = wav_pcm(fast.content)
    assert rate == 8000 and len(pcm) / 8000 == pytest.approx(len(normal_pcm) / 24000, rel=0.01)
    assert len(fast_pcm) < 0.7 * len(normal_pcm)


def test_model_name_may_match_or_be_omitted(client: httpx.Client) -> None:
    assert speak(client, model=TTS_MODEL).status_code == 200
    assert speak(client, model=None).status_code == 200


# --- errors ------------------------------------------------------------------------------------


def test_model_mismatch_is_404(client: httpx.Client) -> None:
    response = speak(client, model="Qwen/Other")
    assert response.status_code == 404
    assert error_of(response) == {
        "message": "The model `Qwen/Other` does not exist.", "type": "NotFoundError", "param": "model", "code": 404,
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"speed": 5}, "body.speed"),
        ({"speed": 0.1}, "body.speed"),
        ({"response_format": "aac"}, "body.response_format"),
        ({"sample_rate": 0}, "body.sample_rate"),
        ({"stream": True, "response_format": "mp3"}, "body"),
        ({"stream_format": "audio", "response_format": "flac"}, "body"),
        ({"stream_format": "video"}, "body.stream_format"),
        ({"voice": {"name": "x"}}, "body.voice"),
    ],
)
def test_validation_errors_are_400_not_422(client: httpx.Client, body: dict[str, Any], param: str) -> None:
    response = speak(client, **body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "Bad Request" and error["param"] == param
    assert re.match(r"1 validation error:\n  \{", error["message"])


def test_missing_input_and_wrong_content_type(client: httpx.Client) -> None:
    missing = client.post(SPEECH, json={"voice": "ryan"})
    assert missing.status_code == 400 and error_of(missing)["param"] == "body.input"
    form = client.post(SPEECH, data={"input": "hi"})
    assert form.status_code == 400
    assert error_of(form) == {
        "message": "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed",
        "type": "Bad Request", "param": None, "code": 400,
    }


SUPPORTED = "aiden, dylan, eric, ono_anna, ryan, serena, sohee, uncle_fu, vivian"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"voice": "Nobody"}, f"Invalid voice 'nobody'. Supported: {SUPPORTED}"),
        ({"input": "   "}, "Input text cannot be empty"),
        ({"language": "klingon"}, "Invalid language 'Klingon'. Supported: Auto, Chinese, English, French, German, "
                                  "Italian, Japanese, Korean, Portuguese, Russian, Spanish"),
        ({"sample_rate": 16000}, "sample_rate=16000 is not supported by the current TTS model; supported rates: 8000, 24000"),
        ({"task_type": "VoiceDesign", "instructions": "warm"},
         "Qwen3-TTS CustomVoice checkpoint does not support task_type='VoiceDesign'. "
         "Use task_type='CustomVoice' or load the matching VoiceDesign checkpoint."),
        ({"ref_text": "hello"}, "Qwen3-TTS CustomVoice checkpoint does not support task_type='Base'. "
                                "Use task_type='CustomVoice' or load the matching Base checkpoint."),
        ({"x_vector_only_mode": True}, "'x_vector_only_mode' is only valid for Base task"),
        ({"instructions": "x" * 501}, "Instructions too long (max 500 characters)"),
        ({"stream": True, "speed": 1.5}, "SSE streaming is not supported with speed adjustment. "
                                         "Use a non-streaming request or remove the speed parameter."),
        ({"stream_format": "audio", "speed": 1.5}, "Streaming is not supported with speed adjustment. "
                                                   "Use a non-streaming request or remove the speed parameter."),
        ({"word_timestamps": True}, "word_timestamps=true requires the server to be launched with --forced-aligner."),
        ({"word_timestamps": True, "stream": True},
         "word_timestamps=true is currently supported by the WebSocket /v1/audio/speech/stream path. "
         "Use session.config with stream_audio=true and response_format='pcm'."),
    ],
)
def test_adapter_errors_are_bad_request_errors(client: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = speak(client, **body)
    assert response.status_code == 400
    assert error_of(response) == {"message": message, "type": "BadRequestError", "param": None, "code": 400}


def test_speech_on_an_omni_model_points_to_chat(omni_server: SimHandle) -> None:
    response = httpx.post(omni_server.url + SPEECH, json={"input": "hi"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "BadRequestError"
    assert error["message"].startswith("The /v1/audio/speech endpoint is only supported for dedicated TTS models")
    assert '"modalities": ["audio"]' in error["message"]


def test_speech_on_a_diffusion_model_produces_no_audio(video_server: SimHandle) -> None:
    response = httpx.post(video_server.url + SPEECH, json={"input": "hi"})
    assert response.status_code == 400
    # The pure-diffusion path writes its body with json.dumps' default separators.
    assert response.content == (
        b'{"error": {"message": "TTS model did not produce audio output.", "type": "BadRequestError", '
        b'"param": null, "code": 400}}'
    )
    rate = httpx.post(video_server.url + SPEECH, json={"input": "hi", "sample_rate": 24000})
    assert error_of(rate) == {"message": "sample_rate is not supported by the current TTS model",
                              "type": "BadRequestError", "param": None, "code": 400}
    bad_voice = httpx.post(video_server.url + SPEECH, json={"input": "hi", "voice": "Ryan"})
    assert bad_voice.json()["error"]["message"] == "Invalid voice 'ryan'. Supported: default"


# --- raw audio stream --------------------------------------------------------------------------


def test_raw_wav_stream_starts_with_an_open_ended_header(client: httpx.Client) -> None:
    whole = speak(client, input=MEDIUM_TEXT, voice="serena")
    with client.stream("POST", SPEECH, json={"input": MEDIUM_TEXT, "voice": "serena", "stream_format": "audio"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = list(response.iter_raw())
    body = b"".join(chunks)
    assert body[:44] == whole.content[:4] + b"\xff\xff\xff\xff" + whole.content[8:40] + b"\xff\xff\xff\xff"
    assert body[44:] == wav_pcm(whole.content)[0]
    assert len(chunks) > 3


def test_raw_pcm_stream_is_only_samples(client: httpx.Client) -> None:
    whole = speak(client, input="Just samples, please.", response_format="pcm")
    with client.stream("POST", SPEECH, json={"input": "Just samples, please.", "response_format": "pcm",
                                             "stream_format": "audio"}) as response:
        assert response.headers["content-type"] == "audio/pcm"
        assert response.read() == whole.content


# --- SSE ---------------------------------------------------------------------------------------

EVENT = re.compile(r"event: (speech\.audio\.\w+)\ndata: (\{.*?\})\n\n", re.S)


def sse_events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = [(name, json.loads(data)) for name, data in EVENT.findall(text)]
    # Byte for byte: rebuilding the stream from the events gives the same text (compact JSON, no [DONE]).
    rebuilt = "".join(f"event: {n}\ndata: {json.dumps(d, separators=(',', ':'))}\n\n" for n, d in events)
    assert rebuilt == text
    return events


@pytest.mark.parametrize("switch", [{"stream": True}, {"stream_format": "sse"}])
def test_sse_wav_first_delta_is_the_header(client: httpx.Client, switch: dict[str, Any]) -> None:
    whole = speak(client, input="Server sent events.", voice="vivian")
    response = speak(client, input="Server sent events.", voice="vivian", **switch)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names == ["speech.audio.delta"] * (len(events) - 1) + ["speech.audio.done"]
    deltas = [payload for _, payload in events[:-1]]
    assert all(set(d) == {"type", "audio", "response_format"} and d["response_format"] == "wav" for d in deltas)
    assert base64.b64decode(deltas[0]["audio"]) == b"RIFF\xff\xff\xff\xff" + whole.content[8:40] + b"\xff\xff\xff\xff"
    assert b"".join(base64.b64decode(d["audio"]) for d in deltas[1:]) == wav_pcm(whole.content)[0]
    done = events[-1][1]
    assert list(done) == ["type", "usage"]
    assert list(done["usage"]) == ["input_tokens", "output_tokens", "total_tokens", "input_token_details"]
    assert done["usage"]["output_tokens"] == int(whole.headers["x-vllm-omni-output-tokens"])
    assert "[DONE]" not in response.text


def test_sse_pcm_has_no_header(client: httpx.Client) -> None:
    whole = speak(client, input="pcm events", response_format="pcm")
    events = sse_events(speak(client, input="pcm events", response_format="pcm", stream=True).text)
    audio_bytes = b"".join(base64.b64decode(p["audio"]) for n, p in events if n == "speech.audio.delta")
    assert audio_bytes == whole.content


# --- faults, aborts, fallback ------------------------------------------------------------------


@pytest.fixture(scope="module")
def failing_tts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    from tests.support.sims import launch_sim

    handle = launch_sim(TTS_MODEL, "--midstream-error-after", "2", log_dir=tmp_path_factory.mktemp("failing"))
    yield handle
    handle.stop()


def test_sse_midstream_error_event(failing_tts: SimHandle) -> None:
    response = httpx.post(failing_tts.url + SPEECH, json={"input": LONG_TEXT, "stream": True}, timeout=30)
    events = sse_events(response.text)
    assert [n for n, _ in events] == ["speech.audio.delta", "speech.audio.delta", "speech.audio.error"]
    assert events[-1][1] == {
        "type": "speech.audio.error",
        "error": {"message": "Simulated engine error in the middle of a stream (vomni-sim --midstream-error-after).",
                  "type": "server_error", "param": None, "code": 500, "partial_audio": True, "action": "discard"},
    }


def test_raw_stream_midstream_failure_truncates_the_body(failing_tts: SimHandle) -> None:
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", failing_tts.url + SPEECH, json={"input": LONG_TEXT, "stream_format": "audio"},
                          timeout=30) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk
    assert received.startswith(b"RIFF\xff\xff\xff\xff")


def test_whole_file_unaffected_by_midstream_knob(failing_tts: SimHandle) -> None:
    assert httpx.post(failing_tts.url + SPEECH, json={"input": "hi"}, timeout=30).status_code == 200


@pytest.mark.parametrize("mode", [{"stream_format": "audio"}, {"stream": True}])
def test_disconnect_mid_stream_aborts(tts_server: SimHandle, mode: dict[str, Any]) -> None:
    before = tts_server.log().count(" aborted.")
    with httpx.stream("POST", tts_server.url + SPEECH, json={"input": LONG_TEXT, **mode}, timeout=30) as response:
        next(response.iter_raw())
    deadline = time.monotonic() + 10
    while tts_server.log().count(" aborted.") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.search(r"\[AsyncOmni\] Request speech-[0-9a-f]{32} aborted\.", tts_server.log())
    assert tts_server.log().count(" aborted.") == before + 1


def test_tone_fallback_is_announced(start_sim: Any) -> None:
    handle = start_sim(TTS_MODEL, env={"PATH": str(Path(sys.executable).parent)})
    response = httpx.post(handle.url + SPEECH, json={"input": "no espeak here"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["x-vomni-speech-engine"] == "tones"
    handle.wait_for_log("speaks in tones")


def test_engine_header_says_espeak_when_installed(client: httpx.Client) -> None:
    expected = "espeak-ng" if any(
        os.access(os.path.join(d, "espeak-ng"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep)
    ) else "tones"
    assert speak(client).headers["x-vomni-speech-engine"] == expected


def test_fail_token_fails_each_mode(client: httpx.Client) -> None:
    message = "Simulated generation failure ([[fail]] in the input)."
    whole = speak(client, input="please [[fail]]")
    assert whole.status_code == 500
    assert error_of(whole) == {"message": f"Speech generation failed: {message}", "type": "InternalServerError",
                               "param": None, "code": 500}
    events = sse_events(speak(client, input="please [[fail]]", stream=True).text)
    assert events == [("speech.audio.error", {"type": "speech.audio.error", "error": {
        "message": message, "type": "server_error", "param": None, "code": 500}})]
    with pytest.raises(httpx.RemoteProtocolError):
        with client.stream("POST", SPEECH, json={"input": "please [[fail]]", "stream_format": "audio"}) as response:
            assert response.status_code == 200
            response.read()
