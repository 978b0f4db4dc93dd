"""Issue 14 items 1 and 3: audio bombs and unbounded speech, against real vomni-sim processes.

Each attack runs against a fresh server, after a warm-up request of the same kind (so decoders and
imports are loaded), and asserts the clear 400 and a bound on the server's peak RSS growth.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.support.attacks import PeakRss, error_of, flac_silence, wav_bytes
from tests.support.sims import TTS_MODEL

BASE_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"
VOICES = "/v1/audio/voices"
SPEECH = "/v1/audio/speech"
BOMB_SECONDS = 600  # ten minutes of silence: ~30 KB of FLAC, 230 MB as float64 samples


def _upload(url: str, name: str, data: bytes, filename: str) -> httpx.Response:
    files = {"audio_sample": (filename, data, "audio/flac" if filename.endswith(".flac") else "audio/wav")}
    return httpx.post(url + VOICES, data={"name": name, "consent": "c-1"}, files=files, timeout=60)


def test_flac_bomb_upload_stops_decoding_at_the_limit(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL)
    bomb = flac_silence(BOMB_SECONDS)
    assert len(bomb) < 200_000  # small on the wire
    assert _upload(sim.url, "warm", flac_silence(3), "warm.flac").status_code == 200
    with PeakRss(sim.process.pid) as rss:
        response = _upload(sim.url, "bomb", bomb, "bomb.flac")
    error = error_of(response, 400)
    assert error["message"] == f"Reference audio too long ({BOMB_SECONDS:.1f}s). Maximum 30s supported — use a shorter clip."
    assert rss.growth_mb < 40, f"decoding a {len(bomb)} byte FLAC grew the server by {rss.growth_mb:.0f} MB"
    assert "bomb" not in httpx.get(sim.url + VOICES).json()["voices"]


def test_flac_bomb_as_ref_audio_is_refused_with_the_real_message(start_sim: Any) -> None:
    sim = start_sim(BASE_MODEL)
    clone = {"input": "Cloned words.", "task_type": "Base", "ref_text": "a hum"}

    def speak(audio: bytes) -> httpx.Response:
        ref = "data:audio/flac;base64," + base64.b64encode(audio).decode()
        return httpx.post(sim.url + SPEECH, json={**clone, "ref_audio": ref}, timeout=60)

    assert speak(flac_silence(3)).status_code == 200
    with PeakRss(sim.process.pid) as rss:
        response = speak(flac_silence(BOMB_SECONDS))
    assert error_of(response, 400)["message"].startswith(f"Reference audio too long ({BOMB_SECONDS:.1f}s).")
    assert rss.growth_mb < 40, f"a FLAC bomb as ref_audio grew the server by {rss.growth_mb:.0f} MB"
    short = httpx.post(sim.url + SPEECH, json={**clone, "ref_audio": "data:audio/wav;base64,"
                                                + base64.b64encode(wav_bytes(0.5)).decode()}, timeout=60)
    assert error_of(short, 400)["message"].startswith("Reference audio too short (0.5s).")


def test_speech_input_is_capped_before_synthesis(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL)
    assert httpx.post(sim.url + SPEECH, json={"input": "warm up", "speed": 0.25}, timeout=60).status_code == 200
    text = "word " * 9600  # 48 KB, the size that cost 6.2 GB at speed 0.25
    with PeakRss(sim.process.pid) as rss:
        response = httpx.post(sim.url + SPEECH, json={"input": text, "speed": 0.25}, timeout=60)
    error = error_of(response, 400)
    assert error["message"] == (
        "Input text is 48000 characters long; vomni-sim speaks at most 4096 per request (--max-speech-input-chars)."
    )
    assert error["param"] == "input"
    assert rss.growth_mb < 20, f"48 KB of speech input grew the server by {rss.growth_mb:.0f} MB"


@pytest.mark.parametrize("stream", [False, True])
def test_speech_output_duration_is_capped(start_sim: Any, stream: bool) -> None:
    sim = start_sim(TTS_MODEL, "--max-speech-seconds", "60")
    assert httpx.post(sim.url + SPEECH, json={"input": "warm up", "speed": 0.25}, timeout=60).status_code == 200
    text = ("The quick brown fox jumps over the lazy dog. " * 90)[:4000]  # allowed length, minutes of speech
    body: dict[str, Any] = {"input": text, "speed": 0.25 if not stream else 1.0, "stream": stream}
    if stream:
        body["response_format"] = "pcm"
    with PeakRss(sim.process.pid) as rss:
        response = httpx.post(sim.url + SPEECH, json=body, timeout=60)
    message = error_of(response, 400)["message"]
    assert message.startswith("The speech would last ") and "at most 60 s per request (--max-speech-seconds)" in message
    assert rss.growth_mb < 20, f"minutes of speech grew the server by {rss.growth_mb:.0f} MB"
