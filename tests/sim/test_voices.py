"""GET/POST/DELETE /v1/audio/voices against real vomni-sim processes (reference §3.10)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.sims import TTS_MODEL, SimHandle, launch_sim
from vomni_nb.sim import audio

VOICES = "/v1/audio/voices"
BASE_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
BUILTIN = ["aiden", "default", "dylan", "eric", "ono_anna", "ryan", "serena", "sohee", "uncle_fu", "vivian"]


def sample_wav(text: str = "Hello there, this is my voice sample for cloning.", voice: str = "ryan") -> bytes:
    speech = audio.synthesize(text, voice=voice, sample_rate=16000)
    return audio.wav_bytes(speech.pcm, speech.sample_rate)


def tone_wav(hz: float, seconds: float, rate: int = 8000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return audio.wav_bytes((np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes(), rate)


def upload(url: str, name: str, data: bytes | None = None, *, filename: str = "sample.wav",
           content_type: str = "audio/wav", **fields: str) -> httpx.Response:
    form = {"name": name, "consent": "consent-123", **fields}
    files = {"audio_sample": (filename, data, content_type)} if data is not None else None
    return httpx.post(url + VOICES, data=form, files=files, timeout=30)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert list(body) == ["error"] and body["error"]["code"] == response.status_code
    return dict(body["error"])


@pytest.fixture(scope="module")
def custom_voice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    handle = launch_sim(TTS_MODEL, log_dir=tmp_path_factory.mktemp("custom"))
    yield handle
    handle.stop()


def test_builtin_list(tts_server: SimHandle) -> None:
    assert httpx.get(tts_server.url + VOICES).json() == {"voices": BUILTIN, "uploaded_voices": []}


def test_non_tts_models_list_only_the_placeholder(image_server: SimHandle) -> None:
    assert httpx.get(image_server.url + VOICES).json() == {"voices": ["default"], "uploaded_voices": []}


def test_non_tts_models_take_embeddings_of_any_length(omni_server: SimHandle) -> None:
    response = httpx.post(omni_server.url + VOICES, data={"name": "tiny", "consent": "c", "speaker_embedding": "[0.5, 0.25]"})
    try:
        assert response.status_code == 200 and response.json()["voice"]["embedding_dim"] == 2
        assert httpx.get(omni_server.url + VOICES).json()["voices"] == ["default", "tiny"]
    finally:  # the omni server is shared: leave it as we found it
        httpx.delete(omni_server.url + VOICES + "/tiny")


def test_upload_list_delete_cycle(custom_voice: SimHandle) -> None:
    url = custom_voice.url
    response = upload(url, "Alice", sample_wav(), ref_text="Hello there", speaker_description="  warm narrator ")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["success", "voice"] and body["success"] is True
    voice = body["voice"]
    assert list(voice) == ["name", "consent", "created_at", "mime_type", "file_size", "ref_text", "speaker_description"]
    assert (voice["name"], voice["consent"], voice["mime_type"]) == ("Alice", "consent-123", "audio/wav")
    assert voice["speaker_description"] == "warm narrator" and voice["file_size"] == len(sample_wav())

    listing = httpx.get(url + VOICES).json()
    assert "alice" in listing["voices"] and listing["voices"] == sorted(listing["voices"])
    entry = next(v for v in listing["uploaded_voices"] if v["name"] == "Alice")
    assert list(entry) == ["name", "consent", "created_at", "file_size", "mime_type", "embedding_source",
                           "embedding_dim", "ref_text", "speaker_description"]
    assert (entry["embedding_source"], entry["embedding_dim"]) == ("audio", None)

    # A CustomVoice checkpoint cannot clone: the real server refuses uploaded voices at speech time.
    speech = httpx.post(url + "/v1/audio/speech", json={"input": "hi", "voice": "alice"})
    assert speech.status_code == 400
    assert error_of(speech)["message"] == (
        "Qwen3-TTS CustomVoice checkpoint does not support task_type='Base'. "
        "Use task_type='CustomVoice' or load the matching Base checkpoint."
    )

    deleted = httpx.delete(url + VOICES + "/Alice")
    assert deleted.json() == {"success": True, "message": "Voice 'Alice' deleted successfully"}
    again = httpx.delete(url + VOICES + "/Alice")
    assert again.status_code == 404
    assert error_of(again) == {"message": "Voice 'Alice' not found", "type": "NotFoundError", "param": None, "code": 404}


def test_embedding_upload(custom_voice: SimHandle) -> None:
    embedding = json.dumps([0.01] * 2048)
    response = httpx.post(custom_voice.url + VOICES, data={"name": "vec", "consent": "c1", "speaker_embedding": embedding})
    assert response.status_code == 200
    voice = response.json()["voice"]
    assert list(voice) == ["name", "consent", "created_at", "embedding_source", "embedding_dim"]
    assert (voice["embedding_source"], voice["embedding_dim"]) == ("direct", 2048)
    entry = next(v for v in httpx.get(custom_voice.url + VOICES).json()["uploaded_voices"] if v["name"] == "vec")
    assert (entry["embedding_source"], entry["embedding_dim"], entry["mime_type"]) == (
        "direct", 2048, "application/x-safetensors")
    assert httpx.delete(custom_voice.url + VOICES + "/vec").status_code == 200


def test_octet_stream_mime_comes_from_the_extension(custom_voice: SimHandle) -> None:
    speech = audio.synthesize("A flac sample that is long enough to keep.", sample_rate=16000)
    flac = audio.encode_audio(speech.pcm, speech.sample_rate, "flac")
    response = upload(custom_voice.url, "flacky", flac, filename="me.flac", content_type="application/octet-stream")
    assert response.json()["voice"]["mime_type"] == "audio/flac"
    httpx.delete(custom_voice.url + VOICES + "/flacky")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "vivian", "data": "sample"}, "Voice name 'vivian' is reserved by a built-in speaker of this model; "
                                               "choose a different name."),
        ({"name": "a/b", "data": "sample"}, "Invalid voice name 'a/b': must be non-empty, no path separators or NUL"),
        ({"name": "x", "data": "sample", "content_type": "text/plain"}, "Unsupported MIME type: text/plain. Allowed: "),
        ({"name": "x", "data": "short"}, "Reference audio too short (0.5s). At least 1s of clear speech is required."),
        ({"name": "x", "data": "long"}, "Reference audio too long (31.0s). Maximum 30s supported — use a shorter clip."),
        ({"name": "x", "data": "huge"}, "File size exceeds maximum limit of 10MB. Got 10485761 bytes."),
        ({"name": "x", "data": "garbage"}, "Could not decode audio file: "),
        ({"name": "x"}, "Either 'audio_sample' or 'speaker_embedding' must be provided"),
        ({"name": "x", "data": "sample", "speaker_embedding": "[1.0]"},
         "'audio_sample' and 'speaker_embedding' are mutually exclusive"),
        ({"name": "x", "speaker_embedding": "[1.0, 2.0]"},
         "speaker_embedding has 2 dimensions; expected 2048 for the loaded Qwen3-TTS model"),
        ({"name": "x", "speaker_embedding": "{not json"}, "'speaker_embedding' must be valid JSON: "),
        ({"name": "x", "speaker_embedding": "[]"}, "'speaker_embedding' must be a non-empty list of numbers"),
        ({"name": "x", "speaker_embedding": '["a"]'}, "'speaker_embedding' must contain only numeric values"),
        ({"name": "x", "speaker_embedding": json.dumps([0.0] * 4097)},
         "'speaker_embedding' exceeds maximum length (4096 elements)"),
    ],
)
def test_upload_problems_are_400(custom_voice: SimHandle, kwargs: dict[str, Any], message: str) -> None:
    payloads = {
        "sample": sample_wav, "short": lambda: tone_wav(200, 0.5), "long": lambda: tone_wav(200, 31.0),
        "huge": lambda: b"\0" * (10 * 1024 * 1024 + 1), "garbage": lambda: b"this is not audio at all" * 50,
    }
    form: dict[str, str] = {"name": kwargs["name"], "consent": "c"}
    if "speaker_embedding" in kwargs:
        form["speaker_embedding"] = kwargs["speaker_embedding"]
    files = None
    if "data" in kwargs:
        files = {"audio_sample": ("s.wav", payloads[kwargs["data"]](), kwargs.get("content_type", "audio/wav"))}
    response = httpx.post(custom_voice.url + VOICES, data=form, files=files, timeout=30)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "BadRequestError" and error["message"].startswith(message)


def test_missing_consent_is_a_validation_error(custom_voice: SimHandle) -> None:
    response = httpx.post(custom_voice.url + VOICES, data={"name": "x"}, files={"audio_sample": ("s.wav", b"x", "audio/wav")})
    assert response.status_code == 400
    assert error_of(response)["param"] == "body.consent"


def test_base_checkpoint_speaks_with_uploaded_voices_across_restarts(start_sim: Any, tmp_path: Path) -> None:
    env = {"VOMNI_SIM_VOICES_DIR": str(tmp_path / "speakers")}
    server = start_sim(BASE_MODEL, env=env)
    speech_url = server.url + "/v1/audio/speech"
    default_task = httpx.post(speech_url, json={"input": "hi"})
    assert error_of(default_task)["message"] == (
        "Qwen3-TTS Base checkpoint does not support task_type='CustomVoice'. "
        "Use task_type='Base' or load the matching CustomVoice checkpoint."
    )
    no_voice = httpx.post(speech_url, json={"input": "hi", "task_type": "Base"})
    assert error_of(no_voice)["message"] == "Base task requires 'ref_audio' or 'speaker_embedding' for voice cloning"
    assert httpx.get(server.url + VOICES).json()["voices"] == ["default"]
    clone = {"input": "Cloned words.", "task_type": "Base", "ref_text": "a hum"}
    low_ref = "data:audio/wav;base64," + base64.b64encode(tone_wav(90, 2.0)).decode()
    high_ref = "data:audio/wav;base64," + base64.b64encode(tone_wav(400, 2.0)).decode()
    by_low = httpx.post(speech_url, json={**clone, "ref_audio": low_ref}, timeout=30)
    by_high = httpx.post(speech_url, json={**clone, "ref_audio": high_ref}, timeout=30)
    assert by_low.status_code == by_high.status_code == 200 and by_low.content != by_high.content
    no_text = httpx.post(speech_url, json={"input": "x", "ref_audio": low_ref}, timeout=30)
    assert error_of(no_text)["message"] == (
        "Base task requires non-empty 'ref_text' (transcript of the reference audio) unless 'x_vector_only_mode' is enabled"
    )
    bad_ref = httpx.post(speech_url, json={**clone, "ref_audio": "ftp://x"}, timeout=30)
    assert error_of(bad_ref)["message"].startswith("ref_audio must be a URL (http/https), base64 data URL")
    assert upload(server.url, "Low", tone_wav(90, 2.0)).status_code == 200
    assert upload(server.url, "High", tone_wav(400, 2.0)).status_code == 200
    low = httpx.post(speech_url, json={"input": "Same words, two voices.", "voice": "low"}, timeout=30)
    high = httpx.post(speech_url, json={"input": "Same words, two voices.", "voice": "HIGH"}, timeout=30)
    assert low.status_code == high.status_code == 200
    assert low.content != high.content
    server.stop()

    again = start_sim(BASE_MODEL, env=env)
    assert sorted(v["name"] for v in httpx.get(again.url + VOICES).json()["uploaded_voices"]) == ["High", "Low"]
    replay = httpx.post(again.url + "/v1/audio/speech", json={"input": "Same words, two voices.", "voice": "low"}, timeout=30)
    assert replay.content == low.content


def test_store_reloads_samples_and_embeddings(tmp_path: Path) -> None:
    from vomni_nb.sim.voices import VoiceStore

    store = VoiceStore(tmp_path, TTS_MODEL)
    store.add_sample("Sam", "ok", "sam.wav", "audio/wav", tone_wav(150, 1.5), None, None, ())
    store.add_embedding("Vec", "ok", json.dumps([0.1] * 2048), ())
    (tmp_path / "junk.voice.json").write_text("[1, 2]")  # an unreadable record is skipped, not fatal
    reloaded = VoiceStore(tmp_path, TTS_MODEL)
    assert sorted(reloaded.voices) == ["sam", "vec"]
    assert reloaded.listing() == store.listing()
    assert reloaded.delete("SAM") and sorted(p.name.split("_")[0] for p in tmp_path.iterdir()) == ["Vec", "Vec", "junk.voice.json"]
