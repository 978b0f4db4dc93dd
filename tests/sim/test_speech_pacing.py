"""``--speech-realtime-factor F``: speech answered at F times real time, streamed and whole.

The schedule is a pure function, tested exactly; against a real vomni-sim only lower bounds on elapsed time
are asserted (a loaded machine can make an answer later, never earlier), plus what pacing must not change:
the bytes, and the abort when the client leaves while the server is still "generating".
"""

from __future__ import annotations

import io
import time
import wave

import httpx
import pytest

from vomni_nb.sim import audio
from vomni_nb.sim.cli import build_parser
from vomni_nb.sim.speech_stream import CHUNK_S, REALTIME_FACTOR, window_due, whole_file_due
from tests.support.sims import TTS_MODEL

SPEECH = "/v1/audio/speech"
TEXT = "The lighthouse keeper climbed the stairs again at dusk."


def _speech(seconds: float) -> audio.Speech:
    return audio.Speech(pcm=b"\0\0" * int(24000 * seconds), sample_rate=24000, engine="tones")


def test_streams_send_one_window_per_window_length_over_the_factor() -> None:
    # wav: header and first window at once, then one window every CHUNK_S / F; pcm has no header.
    assert [window_due(i, "wav", 2.0) for i in range(4)] == [0.0, 0.0, CHUNK_S / 2, 2 * CHUNK_S / 2]
    assert [window_due(i, "pcm", 4.0) for i in range(3)] == [0.0, CHUNK_S / 4, 2 * CHUNK_S / 4]
    assert window_due(3, "pcm", None) == 3 * CHUNK_S / REALTIME_FACTOR  # unset: the 8x of before


def test_whole_files_wait_their_length_over_the_factor_and_not_at_all_by_default() -> None:
    assert whole_file_due(_speech(6.0), 3.0) == pytest.approx(2.0)
    assert whole_file_due(_speech(6.0), None) == 0.0


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "fast"])
def test_the_factor_must_be_a_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([TTS_MODEL, "--speech-realtime-factor", value])
    assert "--speech-realtime-factor" in capsys.readouterr().err
    assert build_parser().parse_args([TTS_MODEL, "--speech-realtime-factor", "1.5"]).speech_realtime_factor == 1.5
    assert build_parser().parse_args([TTS_MODEL]).speech_realtime_factor is None


def _duration(wav_bytes: bytes) -> float:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        return wav.getnframes() / wav.getframerate()


def test_a_real_server_paces_whole_files_and_streams(start_sim) -> None:  # type: ignore[no-untyped-def]
    factor = 2.0
    sim = start_sim(TTS_MODEL, "--speech-realtime-factor", str(factor))
    with httpx.Client(base_url=sim.url, timeout=60) as client:
        started = time.monotonic()
        whole = client.post(SPEECH, json={"input": TEXT, "voice": "vivian"})
        took = time.monotonic() - started
        length = _duration(whole.content)
        assert length > 1.0  # long enough for the bound below to mean something
        assert took >= length / factor
        started = time.monotonic()
        arrivals: list[float] = []
        body = b""
        with client.stream("POST", SPEECH, json={"input": TEXT, "voice": "vivian", "response_format": "pcm",
                                                 "stream_format": "audio"}) as response:
            for chunk in response.iter_raw():
                arrivals.append(time.monotonic() - started)
                body += chunk
    # Pacing changes when the bytes come, never which: the stream holds the file's samples.
    with wave.open(io.BytesIO(whole.content)) as wav:
        assert body == wav.readframes(wav.getnframes())
    windows = len(body) / (2 * int(24000 * CHUNK_S))
    assert arrivals[-1] >= (windows - 1) * CHUNK_S / factor - 1e-3


def test_leaving_during_a_paced_whole_file_aborts_it(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(TTS_MODEL, "--speech-realtime-factor", "0.05")  # 20 s per second of speech
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(sim.url + SPEECH, json={"input": TEXT}, timeout=httpx.Timeout(60, read=5.0))
    assert "aborted." in sim.wait_for_log("aborted.", timeout=30)
