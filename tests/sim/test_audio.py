"""audio.py: espeak-ng speech (or tones without it), and the encoders the speech route uses."""

from __future__ import annotations

import io
import shutil
import struct
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from vomni_nb.sim import audio

PANGRAM = "Sphinx of black quartz, judge my vow. She sells sea shells by the sea shore."


WITHOUT_ESPEAK = str(Path(sys.executable).parent)  # the venv's bin: python, no espeak-ng


@pytest.fixture
def no_espeak(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without the espeak-ng program: it is not on PATH."""
    monkeypatch.setenv("PATH", WITHOUT_ESPEAK)


def samples(speech: audio.Speech) -> np.ndarray:
    return np.frombuffer(speech.pcm, dtype="<i2").astype(np.float64)


def speechiness(speech: audio.Speech) -> tuple[float, float]:
    """(spread of zero-crossing rates across frames, median spectral flatness) of the voiced frames.

    Speech alternates noisy consonants and voiced vowels, so both are high; a pure tone sequence has
    one zero-crossing rate per tone and a flat-zero spectrum between its harmonics.
    """
    x = samples(speech)
    n = speech.sample_rate // 50
    frames = x[: len(x) // n * n].reshape(-1, n)
    energy = (frames**2).mean(axis=1)
    frames = frames[energy > energy.max() * 0.01]
    zcr = (np.diff(np.signbit(frames), axis=1) != 0).mean(axis=1)
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) + 1e-9
    flatness = np.exp(np.log(spectrum).mean(axis=1)) / spectrum.mean(axis=1)
    return float(zcr.std() / zcr.mean()), float(np.median(flatness))


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@needs_espeak
def test_espeak_speaks_speech_not_tones(no_espeak: None, monkeypatch: pytest.MonkeyPatch) -> None:
    tones = audio.synthesize(PANGRAM)
    monkeypatch.undo()
    spoken = audio.synthesize(PANGRAM)
    assert (spoken.engine, tones.engine) == ("espeak-ng", "tones")
    spoken_zcr, spoken_flat = speechiness(spoken)
    tone_zcr, tone_flat = speechiness(tones)
    assert spoken_zcr > 2 * tone_zcr
    assert spoken_flat > 10 * tone_flat


@pytest.mark.parametrize("engine", ["espeak-ng", "tones"])
def test_duration_grows_with_text_and_output_is_deterministic(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine == "tones":
        monkeypatch.setenv("PATH", WITHOUT_ESPEAK)
    elif shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    short = audio.synthesize("Hello.", voice="ryan")
    long = audio.synthesize("Hello. " + PANGRAM, voice="ryan")
    assert short.engine == long.engine == engine
    assert long.duration_s > short.duration_s + 1.0
    assert audio.synthesize("Hello.", voice="ryan").pcm == short.pcm
    assert np.abs(samples(long)).max() > 3000  # audible


def test_tones_differ_by_voice_and_speed(no_espeak: None) -> None:
    a = audio.synthesize("one two three", voice="vivian")
    b = audio.synthesize("one two three", voice="uncle_fu")
    fast = audio.synthesize("one two three", voice="vivian", speed=2.0)
    assert a.pcm != b.pcm
    assert fast.duration_s < a.duration_s * 0.6


@needs_espeak
def test_speed_and_voice_change_espeak_speech() -> None:
    normal = audio.synthesize(PANGRAM, voice="serena")
    fast = audio.synthesize(PANGRAM, voice="serena", speed=2.0)
    other = audio.synthesize(PANGRAM, voice="dylan")
    assert fast.duration_s < normal.duration_s * 0.7
    assert other.pcm != normal.pcm


@pytest.mark.parametrize("rate", [8000, 24000, 44100])
def test_sample_rate_is_honoured(rate: int) -> None:
    speech = audio.synthesize("Rate test.", sample_rate=rate)
    assert speech.sample_rate == rate
    assert 0.3 < speech.duration_s < 3.0


def test_wav_bytes_is_a_complete_16_bit_file() -> None:
    pcm = struct.pack("<4h", 0, 1000, -1000, 32767)
    with wave.open(io.BytesIO(audio.wav_bytes(pcm, 16000))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 16000, 4)
        assert wav.readframes(4) == pcm


def test_streaming_header_has_unknown_sizes() -> None:
    header = audio.streaming_wav_header(24000)
    assert header == (
        b"RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
        + struct.pack("<IIHH", 24000, 48000, 2, 16)
        + b"data\xff\xff\xff\xff"
    )
    assert len(audio.streaming_wav_header(8000, channels=2)) == 44


@pytest.mark.parametrize(
    ("fmt", "format_name", "codec"),
    [("wav", "wav", "pcm_s16le"), ("flac", "flac", "flac"), ("mp3", "mp3", "mp3"), ("opus", "ogg", "opus")],
)
def test_encoded_formats_decode_to_the_same_length(fmt: str, format_name: str, codec: str) -> None:
    speech = audio.synthesize("Encoding test, one two three.")
    data = audio.encode_audio(speech.pcm, speech.sample_rate, fmt)
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert container.format.name == format_name
        assert stream.codec_context.name.startswith(codec)
        decoded = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    assert decoded == pytest.approx(speech.duration_s, abs=0.08)


def test_pcm_is_the_raw_samples_and_unknown_formats_fail() -> None:
    speech = audio.synthesize("raw")
    assert audio.encode_audio(speech.pcm, speech.sample_rate, "pcm") == speech.pcm
    with pytest.raises(ValueError, match="unsupported audio format"):
        audio.encode_audio(speech.pcm, speech.sample_rate, "aac")


def test_content_types_match_the_reference() -> None:
    assert audio.AUDIO_CONTENT_TYPES == {
        "wav": "audio/wav", "pcm": "audio/pcm", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg",
    }
