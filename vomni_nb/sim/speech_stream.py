"""How ``/v1/audio/speech`` streams (reference §3.9): the audio cut into Code2Wav windows (a WAV stream
opens with an open-ended header), sent on a schedule as a GPU decoding faster than real time would, as
raw bytes or as SSE events, and a simulated engine failure part-way (``--midstream-error-after N``, or at
once for a ``[[fail]]`` input).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from vomni_nb.sim import audio, faults, vlog

__all__ = ["CHUNK_S", "REALTIME_FACTOR", "window_due", "whole_file_due", "raw_stream", "sse_stream",
           "MidStreamFailure"]

CHUNK_S = 0.32  # one Code2Wav window
REALTIME_FACTOR = 8.0  # streams run this much faster than playback, as on a GPU


def _pieces(speech: audio.Speech, fmt: str) -> list[bytes]:
    """What a stream sends: for wav the open-ended header first, then one PCM16 piece per Code2Wav window."""
    size = max(2, int(speech.sample_rate * CHUNK_S) * 2)
    chunks = [speech.pcm[i : i + size] for i in range(0, len(speech.pcm), size)] or [b""]
    return ([audio.streaming_wav_header(speech.sample_rate)] if fmt == "wav" else []) + chunks


def window_due(index: int, fmt: str, factor: float | None) -> float:
    """Seconds after a stream began when its piece ``index`` goes out: the header and the first window at
    once, then one window per ``CHUNK_S / factor`` (a GPU decoding at ``factor`` times real time; None: 8x)."""
    first_audio = 1 if fmt == "wav" else 0
    return max(0, index - first_audio) * CHUNK_S / (factor or REALTIME_FACTOR)


def whole_file_due(speech: audio.Speech, factor: float | None) -> float:
    """Seconds after the request began when a whole (non-streamed) file is answered: its length at
    ``factor`` times real time, or at once when no factor was set (the simulator's old default)."""
    return speech.duration_s / factor if factor else 0.0


async def _pace(started: float, index: int, fmt: str, factor: float | None) -> None:
    # Against a schedule, not one sleep per window, so a loaded machine does not slow the set rate.
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, started + window_due(index, fmt, factor) - loop.time()))


class MidStreamFailure(RuntimeError):
    """Raised inside a raw audio stream: uvicorn drops the connection without the last chunk."""


async def raw_stream(
    request_id: str, speech: audio.Speech, fmt: str, fail_after: int | None, fail_message: str, factor: float | None
) -> AsyncIterator[bytes]:
    finished = False
    started = asyncio.get_running_loop().time()
    try:
        for index, piece in enumerate(_pieces(speech, fmt)):
            if fail_after is not None and index >= fail_after:
                vlog.error(f"[SpeechE2E] request_id={request_id} stream=true status=error (simulated mid-stream failure)",
                           where="serving_speech.py:1700")
                finished = True  # a simulated engine failure, not an abort
                raise MidStreamFailure(fail_message)
            await _pace(started, index, fmt, factor)
            yield piece
        finished = True
    finally:
        # No awaits here: a cancelled stream would be cancelled again at once.
        if not finished:
            faults.log_abort(request_id)


async def sse_stream(
    request_id: str, usage: dict[str, Any], speech: audio.Speech, fmt: str, fail_after: int | None, fail_message: str,
    factor: float | None,
) -> AsyncIterator[str]:
    finished = False
    started = asyncio.get_running_loop().time()
    try:
        for index, piece in enumerate(_pieces(speech, fmt)):
            if fail_after is not None and index >= fail_after:
                error: dict[str, Any] = {"message": fail_message, "type": "server_error", "param": None, "code": 500}
                if index > 0:
                    error.update(partial_audio=True, action="discard")
                data = json.dumps({"type": "speech.audio.error", "error": error}, separators=(",", ":"))
                finished = True
                yield f"event: speech.audio.error\ndata: {data}\n\n"
                return
            await _pace(started, index, fmt, factor)
            payload = {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode("ascii"),
                       "response_format": fmt}
            yield f"event: speech.audio.delta\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"
        done = {"type": "speech.audio.done", "usage": usage}
        finished = True
        yield f"event: speech.audio.done\ndata: {json.dumps(done, separators=(',', ':'))}\n\n"
    finally:
        if not finished:
            faults.log_abort(request_id)
