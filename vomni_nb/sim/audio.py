"""Speech without a model: the ``espeak-ng`` program when installed, otherwise a tone per syllable.

Either way the audio is deterministic in (text, voice, speed, rate, seed) and its length grows with the
text, so clients see realistic durations. ``Speech.engine`` says which one spoke; the speech route
passes that on in a response header so nobody mistakes tones for a broken decoder.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import re
import shutil
import struct
import subprocess
import threading
import wave
from typing import Literal

import numpy as np

from vomni_nb.sim.media import seed_from

__all__ = [
    "Speech",
    "SpeechTooLong",
    "synthesize",
    "encode_audio",
    "wav_bytes",
    "streaming_wav_header",
    "espeak_available",
    "AUDIO_CONTENT_TYPES",
    "VoiceStyle",
    "voice_style",
]

Engine = Literal["espeak-ng", "tones"]

# What the real server sends for each response_format (reference §3.9).
AUDIO_CONTENT_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
}
ESPEAK_TIMEOUT_S = 30.0
ESPEAK_MAX_RATE = 22050  # espeak-ng writes 16-bit mono at this rate
ESPEAK_BASE_WPM = 175


@dataclasses.dataclass(frozen=True)
class Speech:
    pcm: bytes  # s16le mono
    sample_rate: int
    engine: Engine

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclasses.dataclass(frozen=True)
class VoiceStyle:
    """How a voice name sounds: an espeak voice+variant and a pitch (0-99; tones scale from it)."""

    espeak_voice: str
    pitch: int


# Qwen3-TTS CustomVoice speakers, roughly as the model card describes them (gender, accent).
BUILTIN_STYLES: dict[str, VoiceStyle] = {
    "serena": VoiceStyle("en-us+f2", 55),
    "vivian": VoiceStyle("en-us+f3", 65),
    "uncle_fu": VoiceStyle("en-gb+m3", 25),
    "ryan": VoiceStyle("en-us+m1", 45),
    "aiden": VoiceStyle("en-us+m4", 50),
    "ono_anna": VoiceStyle("en-us+f4", 70),
    "sohee": VoiceStyle("en-us+f1", 60),
    "eric": VoiceStyle("en-gb+m2", 40),
    "dylan": VoiceStyle("en-gb-x-rp+m5", 35),
}
LANGUAGE_VOICES = {
    "chinese": "cmn",
    "english": "en-us",
    "japanese": "ja",
    "korean": "ko",
    "german": "de",
    "french": "fr",
    "russian": "ru",
    "portuguese": "pt",
    "spanish": "es",
    "italian": "it",
}


def voice_style(voice: str | None, *, language: str | None = None, pitch_hint: int | None = None) -> VoiceStyle:
    """A stable style for any voice name; built-ins have hand-picked ones, others are hashed."""
    key = (voice or "").lower()
    style = BUILTIN_STYLES.get(key)
    if style is None:
        digest = seed_from("voice", key)
        variant = ("f1", "f2", "f3", "f4", "m1", "m2", "m3", "m4")[digest % 8]
        style = VoiceStyle(f"en-us+{variant}", 25 + digest % 50)
    if pitch_hint is not None:
        style = dataclasses.replace(style, pitch=max(0, min(99, pitch_hint)))
    if language and language.lower() in LANGUAGE_VOICES and language.lower() != "english":
        variant = style.espeak_voice.partition("+")[2]
        style = dataclasses.replace(style, espeak_voice=LANGUAGE_VOICES[language.lower()] + (f"+{variant}" if variant else ""))
    return style


def _espeak_path() -> str | None:
    """espeak-ng as found on the current PATH (so a process, or a test, without it on PATH speaks in tones)."""
    return _which_espeak(os.environ.get("PATH", os.defpath))


@functools.lru_cache(maxsize=8)
def _which_espeak(search_path: str) -> str | None:
    return shutil.which("espeak-ng", path=search_path)


def espeak_available() -> bool:
    return _espeak_path() is not None


class SpeechTooLong(ValueError):
    """The speech would last longer than the caller allows; nothing that long was allocated."""

    def __init__(self, seconds: float | None, limit: float) -> None:
        length = f"{seconds:.0f} s" if seconds is not None else f"more than {limit:.0f} s"
        super().__init__(
            f"The speech would last {length}; vomni-sim makes at most {limit:.0f} s per request "
            "(--max-speech-seconds). Shorten the input or raise the speed."
        )
        self.seconds = seconds
        self.limit = limit


RESAMPLE_BLOCK = 1 << 20  # output samples interpolated at a time, so resampling needs no full-length temporaries


def _resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate or samples.size == 0:
        return samples
    count = max(1, round(samples.size * target_rate / source_rate))
    out = np.empty(count, dtype=np.float32)
    step = (samples.size - 1) / (count - 1) if count > 1 else 0.0
    for start in range(0, count, RESAMPLE_BLOCK):
        positions = np.arange(start, min(count, start + RESAMPLE_BLOCK), dtype=np.float64) * step
        low = np.minimum(positions.astype(np.int64), samples.size - 1)
        high = np.minimum(low + 1, samples.size - 1)
        frac = positions - low
        out[start : start + positions.size] = samples[low] * (1 - frac) + samples[high] * frac
    return out


def _parse_espeak_wav(data: bytes, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """espeak-ng --stdout writes a streaming header (bogus sizes), so read the fields by hand."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not write a WAV file")
    sample_rate = struct.unpack_from("<I", data, 24)[0]
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk_id == b"data":
            body = memoryview(data)[offset + 8 :]
            body = body[: len(body) - len(body) % 2]
            seconds = len(body) / 2 / max(1, sample_rate)
            if max_seconds is not None and seconds > max_seconds:
                raise SpeechTooLong(seconds, max_seconds)
            return np.frombuffer(body, dtype="<i2").astype(np.float32), int(sample_rate)
        offset += 8 + size
    raise ValueError("espeak-ng WAV has no data chunk")


def _run_espeak(cmd: list[str], max_seconds: float | None) -> bytes:
    """espeak-ng's WAV output, read as it comes; more than ``max_seconds`` of it stops the program."""
    limit = None if max_seconds is None else 1024 + int(max_seconds * ESPEAK_MAX_RATE * 2)
    chunks: list[bytes] = []
    total = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
        watchdog = threading.Timer(ESPEAK_TIMEOUT_S, process.kill)
        watchdog.start()
        try:
            assert process.stdout is not None
            while chunk := process.stdout.read(1 << 16):
                total += len(chunk)
                if limit is not None and max_seconds is not None and total > limit:
                    process.kill()
                    raise SpeechTooLong(None, max_seconds)
                chunks.append(chunk)
            if process.wait() != 0:
                raise subprocess.CalledProcessError(process.returncode, cmd)
        finally:
            watchdog.cancel()
    return b"".join(chunks)


def _speak_espeak(
    text: str, style: VoiceStyle, speed: float, sample_rate: int, max_seconds: float | None = None
) -> np.ndarray | None:
    path = _espeak_path()
    if path is None:
        return None
    wpm = max(80, min(500, round(ESPEAK_BASE_WPM * speed)))
    cmd = [path, "--stdout", "-v", style.espeak_voice, "-s", str(wpm), "-p", str(style.pitch), "--", text]
    try:
        samples, rate = _parse_espeak_wav(_run_espeak(cmd, max_seconds), max_seconds)
    except SpeechTooLong:
        raise
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if samples.size == 0:
        return None
    return _resample(samples, rate, sample_rate)


def _syllables(text: str) -> list[str]:
    """Vowel groups inside words: a rough syllable count that grows with the text."""
    chunks: list[str] = []
    for word in re.findall(r"\w+", text):
        parts = re.findall(r"[^aeiouy]*[aeiouy]+", word.lower()) or [word]
        chunks.extend(parts)
    return chunks or [text.strip() or " "]


def _speak_tones(
    text: str, style: VoiceStyle, speed: float, sample_rate: int, seed: int, max_seconds: float | None = None
) -> np.ndarray:
    """One tone per syllable; the length is known before anything is allocated, so it is checked first."""
    rng = np.random.default_rng(seed_from("tones", text, style, seed))
    base_hz = 140.0 + style.pitch * 2.5
    n = int(sample_rate * 0.16 / speed)
    gap = int(sample_rate * 0.04 / speed)
    chunks = _syllables(text)
    seconds = len(chunks) * (n + gap) / sample_rate
    if max_seconds is not None and seconds > max_seconds:
        raise SpeechTooLong(seconds, max_seconds)
    out = np.zeros(len(chunks) * (n + gap), dtype=np.float32)
    t = np.arange(n) / sample_rate
    envelope = np.sin(np.pi * np.arange(n) / n) ** 2
    for index, chunk in enumerate(chunks):
        freq = base_hz * (1.0 + 0.25 * ((seed_from(chunk) % 9) - 4) / 4)
        start = index * (n + gap)
        out[start : start + n] = np.sin(2 * np.pi * freq * t) * envelope * 9000 * rng.uniform(0.8, 1.0)
    return out


def synthesize(
    text: str,
    *,
    voice: str | None = None,
    speed: float = 1.0,
    sample_rate: int = 24000,
    seed: int = 0,
    language: str | None = None,
    pitch_hint: int | None = None,
    max_seconds: float | None = None,
) -> Speech:
    """Speak ``text``: espeak-ng when it is installed and works, else one tone per syllable.

    ``max_seconds``: SpeechTooLong instead of anything longer (checked before the samples exist).
    """
    style = voice_style(voice, language=language, pitch_hint=pitch_hint)
    samples = _speak_espeak(text, style, speed, sample_rate, max_seconds)
    engine: Engine = "espeak-ng"
    if samples is None:
        samples = _speak_tones(text, style, speed, sample_rate, seed, max_seconds)
        engine = "tones"
    if max_seconds is not None and samples.size / sample_rate > max_seconds:
        raise SpeechTooLong(samples.size / sample_rate, max_seconds)
    samples = np.round(samples)
    np.clip(samples, -32768, 32767, out=samples)
    return Speech(pcm=samples.astype("<i2").tobytes(), sample_rate=sample_rate, engine=engine)


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """A complete 16-bit PCM WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def streaming_wav_header(sample_rate: int, channels: int = 1) -> bytes:
    """The 44-byte header the real server streams first: 0xFFFFFFFF in both size fields."""
    byte_rate = sample_rate * channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, channels, sample_rate, byte_rate, channels * 2, 16,
        b"data", 0xFFFFFFFF,
    )


def _encode_with_av(pcm: bytes, sample_rate: int, container: str, codec: str, rate: int) -> bytes:
    import av  # imported lazily: only compressed formats need it

    samples = np.frombuffer(pcm, dtype="<i2")
    if rate != sample_rate:
        samples = np.clip(np.round(_resample(samples.astype(np.float64), sample_rate, rate)), -32768, 32767)
        samples = samples.astype("<i2")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=rate, layout="mono")  # type: ignore[call-overload]
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


# Opus only runs at these rates; MP3 at the MPEG ones. Others are resampled for the encoder only.
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)
MP3_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


def _nearest(rate: int, allowed: tuple[int, ...]) -> int:
    return rate if rate in allowed else min(allowed, key=lambda r: (abs(r - rate), -r))


def encode_audio(pcm: bytes, sample_rate: int, fmt: str) -> bytes:
    """Encode s16le mono PCM as wav | pcm | flac | mp3 | opus (Ogg)."""
    fmt = fmt.lower()
    if fmt == "wav":
        return wav_bytes(pcm, sample_rate)
    if fmt in ("pcm", "pcm16"):
        return pcm
    if fmt == "flac":
        return _encode_with_av(pcm, sample_rate, "flac", "flac", sample_rate)
    if fmt == "mp3":
        return _encode_with_av(pcm, sample_rate, "mp3", "libmp3lame", _nearest(sample_rate, MP3_RATES))
    if fmt == "opus":
        return _encode_with_av(pcm, sample_rate, "ogg", "libopus", _nearest(sample_rate, OPUS_RATES))
    raise ValueError(f"unsupported audio format {fmt!r}")
