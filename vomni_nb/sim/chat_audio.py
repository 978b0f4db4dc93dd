"""Spoken replies for omni chat: the whole file for JSON answers, independent files for SSE chunks."""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any

from fastapi.responses import Response

from vomni_nb.sim import audio
from vomni_nb.sim.app_deps import random_hex
from vomni_nb.sim.httperrors import serving_error_response

__all__ = ["AUDIO_FORMATS", "CHAT_SAMPLE_RATE", "resolve_audio_format", "AudioReply", "audio_reply", "audio_chunks"]

AUDIO_FORMATS = frozenset({"wav", "pcm", "flac", "mp3", "opus"})
CHAT_AUDIO_FORMATS = AUDIO_FORMATS | {"pcm16"}
CHAT_SAMPLE_RATE = 24000  # Qwen-Omni's talker rate
CHUNK_SECONDS = 0.5  # Qwen3-Omni streams many short windows


def resolve_audio_format(audio_params: object) -> str | Response:
    """``audio.format`` (default wav; pcm16 = pcm) or the 400 for anything else."""
    fmt = audio_params.get("format", "wav") if isinstance(audio_params, dict) else "wav"
    if not isinstance(fmt, str) or fmt not in CHAT_AUDIO_FORMATS:
        return serving_error_response(
            f"Invalid audio format '{fmt}'. Supported formats: {sorted(CHAT_AUDIO_FORMATS)}"
        )
    return "pcm" if fmt == "pcm16" else str(fmt)


@dataclasses.dataclass(frozen=True)
class AudioReply:
    data: bytes  # a complete file in ``fmt``
    fmt: str
    frames: int
    sample_rate: int
    engine: str

    def message_audio(self) -> dict[str, Any]:
        return {
            "id": f"audio-{random_hex(16)}",
            "data": base64.b64encode(self.data).decode(),
            "expires_at": int(time.time()) + 24 * 3600,
            "transcript": "",
        }

    def metadata(self) -> dict[str, Any]:
        return {"format": self.fmt, "sample_rate_hz": self.sample_rate, "frame_count": self.frames, "channels": 1}


def _speech(text: str, voice: str | None, seed: int) -> audio.Speech:
    return audio.synthesize(text, voice=voice, sample_rate=CHAT_SAMPLE_RATE, seed=seed)


def audio_reply(text: str, fmt: str, voice: str | None, seed: int) -> AudioReply:
    speech = _speech(text, voice, seed)
    data = audio.encode_audio(speech.pcm, speech.sample_rate, fmt)
    return AudioReply(data, fmt, len(speech.pcm) // 2, speech.sample_rate, speech.engine)


def audio_chunks(text: str, fmt: str, voice: str | None, seed: int) -> list[AudioReply]:
    """The speech cut into ~0.5 s windows, each encoded as its own file (a WAV chunk has its own header)."""
    speech = _speech(text, voice, seed)
    step = int(speech.sample_rate * CHUNK_SECONDS) * 2
    pieces = [speech.pcm[i : i + step] for i in range(0, len(speech.pcm), step)] or [b""]
    return [
        AudioReply(audio.encode_audio(p, speech.sample_rate, fmt), fmt, len(p) // 2, speech.sample_rate, speech.engine)
        for p in pieces
    ]
