"""``POST /v1/audio/speech/batch``: many utterances in one request (reference §3.10, SS ``create_speech_batch``).

Request-level checks answer for the whole batch, in vLLM-Omni's order: pydantic (400 validation form)
→ diffusion server (400) → more than 32 items (400) → model name (404) → dead engine (500). After
that the batch always answers 200: each item is the batch's shared fields with the item's own set
ones on top, validated and generated on its own, and a failed item is reported in its place
(``status: "error"`` and the message) while the others succeed. A ``[[fail]]`` in an item's input
fails that item.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AliasChoices, BaseModel, Field

from vomni_nb.sim import audio, faults, vlog, voices
from vomni_nb.sim.app_deps import require_json
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.families import Family
from vomni_nb.sim.media import FAIL_TOKEN
from vomni_nb.sim.speech import (
    ENGINE_HEADER,
    FAIL_MESSAGE,
    INT64_MAX,
    OMNI_MESSAGE,
    SUPPORTED_RATES,
    SpeechRequest,
    _engine_headers,
    _qwen3_tts_rules,
    _ref_audio_pitch,
    _speak,
    error_response,
    usage_of,
)

__all__ = ["router", "BatchSpeechRequest", "SpeechBatchItem", "MAX_ITEMS"]

router = APIRouter()

MAX_ITEMS = 32  # the engine's tts_batch_max_items default
AudioFormat = Literal["wav", "pcm", "flac", "mp3", "opus"]
TaskType = Literal["CustomVoice", "VoiceDesign", "Base"]
SampleRate = Annotated[int, Field(gt=0)]
# The fields an item may set; each overrides the batch's value when it is not null.
ITEM_FIELDS = (
    "voice", "instructions", "response_format", "sample_rate", "speed", "task_type", "language", "ref_audio",
    "ref_text", "x_vector_only_mode", "max_new_tokens", "initial_codec_chunk_frames", "non_streaming_mode",
)


class SpeechBatchItem(BaseModel):
    """One utterance: ``input`` plus optional overrides of the batch's fields (unknown keys ignored)."""

    input: str
    voice: str | None = Field(default=None, validation_alias=AliasChoices("voice", "speaker"))
    instructions: str | None = None
    response_format: AudioFormat | None = None
    sample_rate: SampleRate | None = None
    speed: float | None = Field(default=None, ge=0.25, le=4.0)
    task_type: TaskType | None = None
    language: str | None = None
    ref_audio: str | None = None
    ref_text: str | None = None
    x_vector_only_mode: bool | None = None
    max_new_tokens: int | None = Field(default=None, ge=1, le=INT64_MAX)
    initial_codec_chunk_frames: int | None = Field(default=None, ge=0, le=INT64_MAX)
    non_streaming_mode: bool | None = None


class BatchSpeechRequest(BaseModel):
    """The items and the defaults they share (vLLM-Omni's ``BatchSpeechRequest``)."""

    model: str | None = None
    items: list[SpeechBatchItem] = Field(..., min_length=1)
    voice: str | None = Field(default=None, validation_alias=AliasChoices("voice", "speaker"))
    instructions: str | None = None
    response_format: AudioFormat = "wav"
    sample_rate: SampleRate | None = None
    speed: float | None = Field(default=1.0, ge=0.25, le=4.0)
    task_type: TaskType | None = None
    language: str | None = None
    ref_audio: str | None = None
    ref_text: str | None = None
    x_vector_only_mode: bool | None = None
    max_new_tokens: int | None = Field(default=None, ge=1, le=INT64_MAX)
    initial_codec_chunk_frames: int | None = Field(default=None, ge=0, le=INT64_MAX)
    non_streaming_mode: bool | None = None


def merged_request(batch: BatchSpeechRequest, item: SpeechBatchItem) -> SpeechRequest:
    """The item's own set fields over the batch's, as one non-streaming speech request."""
    picked = {name: getattr(item, name) if getattr(item, name) is not None else getattr(batch, name)
              for name in ITEM_FIELDS}
    picked["response_format"] = picked["response_format"] or "wav"
    picked["speed"] = picked["speed"] if picked["speed"] is not None else 1.0
    return SpeechRequest(input=item.input, model=batch.model, stream=False, **picked)


def _sample_rate_problem(request: SpeechRequest, config: SimConfig) -> str | None:
    if request.sample_rate is None:
        return None
    if config.family is not Family.TTS:
        return "sample_rate is not supported by the current TTS model"
    if request.sample_rate not in SUPPORTED_RATES:
        rates = ", ".join(str(rate) for rate in SUPPORTED_RATES)
        return f"sample_rate={request.sample_rate} is not supported by the current TTS model; supported rates: {rates}"
    return None


def _failed(index: int, message: str) -> dict[str, Any]:
    return {"index": index, "status": "error", "error": message}


async def _run_item(index: int, request: SpeechRequest, config: SimConfig, store: voices.VoiceStore) -> dict[str, Any]:
    problem = _sample_rate_problem(request, config) or _qwen3_tts_rules(request, config, store)
    if problem is not None:
        return _failed(index, problem)  # a validation failure is reported, not logged, as in SS
    request_id = f"speech-{uuid.uuid4().hex}"
    try:
        if config.family is Family.OMNI:
            raise ValueError(OMNI_MESSAGE)  # what preparing the generation raises on a talker model
        vlog.info(f"TTS speech request {request_id}: model=qwen3_tts", where="serving_speech.py:1984")
        if FAIL_TOKEN in request.input:
            raise RuntimeError(FAIL_MESSAGE)
        ref_pitch = await asyncio.to_thread(_ref_audio_pitch, request.ref_audio)  # 1-30 s, as one request
        speech = await asyncio.to_thread(_speak, request, config, store, ref_pitch)
        data = await asyncio.to_thread(audio.encode_audio, speech.pcm, speech.sample_rate, request.response_format)
    except Exception as exc:  # one item's failure is reported in its place; the batch goes on
        vlog.error(f"Batch item {index} failed: {exc}", where="serving_speech.py:2800")
        return _failed(index, str(exc))
    _engine_headers(speech)  # warns once when the tones stand in for espeak-ng
    return {
        "index": index,
        "status": "success",
        "audio_data": base64.b64encode(data).decode("ascii"),
        "media_type": audio.AUDIO_CONTENT_TYPES[request.response_format],
        "usage": usage_of(request, speech),
        "engine": speech.engine,
    }


@router.post("/v1/audio/speech/batch", dependencies=[Depends(require_json)])
async def create_speech_batch(body: BatchSpeechRequest, request: Request) -> Response:
    config: SimConfig = request.app.state.sim
    if config.family in (Family.IMAGE, Family.VIDEO):
        raise HTTPException(400, "Batch speech is not supported in diffusion mode")
    if len(body.items) > MAX_ITEMS:
        raise HTTPException(400, f"Batch contains {len(body.items)} items, exceeding the maximum of {MAX_ITEMS}.")
    if body.model is not None and body.model != config.served_model_name:
        return error_response(f"The model `{body.model}` does not exist.", 404, "NotFoundError", "model")
    refused = await faults.before_generation(request)
    if refused is not None:
        return refused
    store = voices.store_of(request)
    batch_id = f"speech-batch-{uuid.uuid4().hex}"
    work = asyncio.gather(*(
        _run_item(index, merged_request(body, item), config, store) for index, item in enumerate(body.items)
    ))
    try:
        results = await faults.run_cancellable(request, batch_id, work)
    except faults.ClientGone:
        return Response(status_code=499)
    engines = {result.pop("engine") for result in results if "engine" in result}
    succeeded = sum(result["status"] == "success" for result in results)
    body_out = {"id": batch_id, "results": results, "total": len(results), "succeeded": succeeded,
                "failed": len(results) - succeeded}
    headers = {ENGINE_HEADER: engines.pop()} if len(engines) == 1 else None
    return JSONResponse(body_out, headers=headers)
