"""POST /v1/chat/completions for every family (reference §3.3–3.5, §4, §5).

* image/video (pure diffusion): chat_diffusion.py builds the body; ``stream`` is ignored.
* omni: text, text+audio merged into one choice, audio-only; SSE streaming with ``modality``.
* tts: no chat handler -> HTTP 200 whose body is the error object (what AS L1234 returns).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from vomni_nb.sim import faults, vlog
from vomni_nb.sim.app_deps import peak_memory_mb, random_hex, require_json
from vomni_nb.sim.chat_audio import audio_reply, resolve_audio_format
from vomni_nb.sim.chat_diffusion import (
    DiffusionChat,
    DiffusionChatFailed,
    check_diffusion_args,
    diffusion_prompt,
    normalize_diffusion_args,
)
from vomni_nb.sim.chat_sse import OmniStream
from vomni_nb.sim.chat_text import compose_reply, count_tokens, split_tokens
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.families import Family
from vomni_nb.sim.httperrors import error_body, error_response, serving_error_response

__all__ = ["router", "ChatCompletionRequest", "supported_speakers", "validate_speaker"]

router = APIRouter()

OMNI_MODALITIES = ("audio", "text")
# The talker speakers of each model's HF config (lower-cased, as vLLM-Omni compares them).
OMNI_SPEAKERS = {"qwen/qwen3-omni": {"aiden", "chelsie", "ethan"}, "qwen/qwen2.5-omni": {"chelsie", "ethan"}}
DIFFUSION_MODALITIES = ("image", "text")


class StreamOptions(BaseModel):
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class ChatCompletionRequest(BaseModel):
    """The fields of upstream's request that the simulator reads; unknown keys are kept (extra="allow")."""

    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]]
    model: str | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = 1
    seed: int | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logprobs: bool | None = False
    request_id: str | None = None


def _validate_raw(raw: dict[str, Any]) -> None:
    """The omni pre-checks that upstream's model would coerce too broadly."""
    modalities = raw.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities)):
        raise HTTPException(400, 'modalities must be a list of strings, e.g. ["text", "audio", "image"]')
    if raw.get("logprobs") is not None and not isinstance(raw["logprobs"], bool):
        raise HTTPException(400, "logprobs must be a boolean (true or false)")


def supported_speakers(model: str) -> set[str]:
    lowered = model.lower()
    return next((names for prefix, names in OMNI_SPEAKERS.items() if lowered.startswith(prefix)), set())


def validate_speaker(speaker: object, supported: set[str]) -> str | None:
    """vLLM-Omni's rule: blank -> None; otherwise lower-cased and checked (ValueError -> 400)."""
    if not isinstance(speaker, str) or not speaker.strip():
        return None
    normalized = speaker.lower().strip()
    if supported and normalized not in supported:
        raise ValueError(f"Invalid speaker '{speaker}'. Supported: {', '.join(sorted(supported))}")
    return normalized


def _unsupported(modalities: list[Any], allowed: tuple[str, ...]) -> Response | None:
    if not all(isinstance(m, str) for m in modalities):
        return serving_error_response('modalities must be a list of strings, e.g. ["text", "image"]')
    bad = set(modalities) - set(allowed)
    if not bad:
        return None
    return serving_error_response(
        f"Unsupported output modalities {', '.join(sorted(bad))} for this model. "
        f"Supported modalities: {', '.join(sorted(allowed))}"
    )


@router.post("/v1/chat/completions", dependencies=[Depends(require_json)])
async def create_chat_completion(body: ChatCompletionRequest, raw_request: Request) -> Response:
    config: SimConfig = raw_request.app.state.sim
    raw = await raw_request.json()
    _validate_raw(raw)
    if config.family is Family.TTS:
        # No chat handler: the route *returns* the ErrorResponse object, so the status stays 200.
        return JSONResponse(error_body("The model does not support Chat Completions API", 400, "BadRequestError"))
    fault = await faults.before_generation(raw_request)
    if fault is not None:
        return fault
    if config.family in (Family.IMAGE, Family.VIDEO):
        return await _diffusion_chat(body, raw_request, config)
    return await _omni_chat(body, raw_request, config)


async def _diffusion_chat(body: ChatCompletionRequest, raw_request: Request, config: SimConfig) -> Response:
    extras = dict(body.model_extra or {})
    nested = extras.pop("extra_body", None)
    explicit = {key: getattr(body, key) for key in body.model_fields_set}
    try:
        args = normalize_diffusion_args({**extras, **explicit}, nested)
        check_diffusion_args(args, config.limits)
    except ValueError as exc:
        return serving_error_response(str(exc))
    modalities = args.get("modalities")
    if isinstance(modalities, list):
        refused = _unsupported(modalities, DIFFUSION_MODALITIES)
        if refused is not None:
            return refused
    handler = DiffusionChat(config.served_model_name, config.family, config.max_generated_image_size, config.limits)
    if modalities == ["text"] and config.family is Family.IMAGE:
        try:
            text = await asyncio.to_thread(compose_reply, body.messages, body.seed, config.served_model_name,
                                           config.limits, config.faults.reply_tokens)
        except ValueError as exc:
            return serving_error_response(str(exc))
        return JSONResponse(handler.body(text, diffusion_prompt(body.messages)))
    started = time.monotonic()
    request_id = f"chatcmpl-{random_hex(16)}"
    cancel = threading.Event()  # a worker thread cannot be cancelled; it checks this between images
    try:
        urls, prompt = await faults.run_cancellable(
            raw_request, request_id, asyncio.to_thread(handler.render, body.messages, args, cancel)
        )
    except faults.ClientGone:
        cancel.set()
        return Response(status_code=499)
    except ValueError as exc:
        return serving_error_response(str(exc))
    except DiffusionChatFailed as exc:
        vlog.error(f"Diffusion chat completion failed: {exc}", where="serving_chat.py:4002")
        return error_response(f"Image generation failed: {exc}", 500, "BadRequestError")
    content = handler.image_items(urls, time.monotonic() - started, peak_memory_mb())
    return JSONResponse(handler.body(content, prompt))


def _request_id(raw_request: Request, body: ChatCompletionRequest) -> str:
    return f"chatcmpl-{raw_request.headers.get('x-request-id') or body.request_id or uuid.uuid4().hex}"


def _limit(body: ChatCompletionRequest) -> int | None:
    # Omni mode copies only max_tokens onto the thinker's params (SC _OPENAI_SAMPLING_FIELDS, L1318);
    # max_completion_tokens is accepted but has no effect in 0.30.0.
    return body.max_tokens


async def _omni_chat(body: ChatCompletionRequest, raw_request: Request, config: SimConfig) -> Response:
    if body.model is not None and body.model != config.served_model_name:
        return serving_error_response(f"The model `{body.model}` does not exist.", 404, param="model")
    extras = body.model_extra or {}
    count = body.n if body.n is not None else 1
    if count > config.limits.max_outputs_per_request:
        return serving_error_response(
            f"n must be at most {config.limits.max_outputs_per_request} on vomni-sim (--max-outputs-per-request), "
            f"got {count}.", param="n",
        )
    modalities = extras.get("modalities") or list(("text", "audio"))
    refused = _unsupported(modalities, OMNI_MODALITIES)
    if refused is not None:
        return refused
    audio_format = "wav"
    if "audio" in modalities:
        resolved = resolve_audio_format(extras.get("audio"))
        if isinstance(resolved, Response):
            return resolved
        audio_format = resolved
    try:
        voice = validate_speaker(extras.get("voice") or extras.get("speaker"), supported_speakers(config.model))
    except ValueError as exc:
        return serving_error_response(str(exc))
    request_id = _request_id(raw_request, body)
    try:  # attached images are decoded (header first, off the event loop) to describe them
        reply = await asyncio.to_thread(compose_reply, body.messages, body.seed, config.served_model_name,
                                        config.limits, config.faults.reply_tokens)
    except ValueError as exc:
        return serving_error_response(str(exc))
    tokens = split_tokens(reply)
    limit = _limit(body)
    finish = "stop"
    if limit is not None and len(tokens) > limit:
        tokens, finish = tokens[: max(limit, 0)], "length"
    text = "".join(tokens)
    prompt_tokens = sum(count_tokens(str(m.get("content", ""))) for m in body.messages)
    seed = body.seed or 0
    if body.stream:
        stream = OmniStream(
            request_id=request_id, model=config.served_model_name, modalities=modalities,
            audio_format=audio_format, tokens=tokens, finish=finish, prompt_tokens=prompt_tokens,
            include_usage=bool(body.stream_options and body.stream_options.include_usage),
            continuous_usage=bool(
                body.stream_options and body.stream_options.include_usage and body.stream_options.continuous_usage_stats
            ),
            tokens_per_second=config.faults.tokens_per_second, voice=voice, seed=seed,
            error_after=faults.midstream_error_after(raw_request), n=max(1, body.n or 1),
        )
        return StreamingResponse(stream.events(raw_request), media_type="text/event-stream")
    try:
        audio = None
        if "audio" in modalities:
            audio = await faults.run_cancellable(
                raw_request, request_id, asyncio.to_thread(audio_reply, text, audio_format, voice, seed)
            )
        elif config.faults.tokens_per_second > 0:
            # A non-streamed answer still takes the time its tokens would take.
            await faults.run_cancellable(
                raw_request, request_id, asyncio.sleep(len(tokens) / config.faults.tokens_per_second)
            )
    except faults.ClientGone:
        return Response(status_code=499)
    choices = []
    for index in range(max(1, body.n or 1)):
        choice: dict[str, Any] = {
            "index": index,
            "message": {
                "role": "assistant", "content": text if "text" in modalities else None, "refusal": None,
                "annotations": None, "audio": audio.message_audio() if audio else None, "function_call": None,
                "reasoning": None,
            },
            # A standalone audio choice is built with finish_reason "stop" (SC ~L2962); a merged one
            # keeps the text choice's.
            "logprobs": None, "finish_reason": finish if "text" in modalities else "stop", "stop_reason": None,
            "token_ids": None, "routed_experts": None,
        }
        if audio:
            choice["audio_metadata"] = audio.metadata()
        choices.append(choice)
    completion_tokens = len(tokens) * len(choices)
    return JSONResponse({
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": config.served_model_name,
        "choices": choices,
        "service_tier": None,
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens, "prompt_tokens_details": None,
        },
        "prompt_logprobs": None, "prompt_token_ids": None, "prompt_text": None,
        "kv_transfer_params": None, "ec_transfer_params": None, "metrics": None,
    }, headers={"X-Vomni-Speech-Engine": audio.engine} if audio else None)

