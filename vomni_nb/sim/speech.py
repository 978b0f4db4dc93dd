"""``POST /v1/audio/speech`` in its three modes (reference §3.9; the two streamed ones in speech_stream.py),
plus the voices routes.

Checks run in the order vLLM-Omni runs them, so the same bad request gets the same first error:
pydantic (400 validation form) → "default" voice → sample rate → model name (404) → streaming limits →
the Qwen3-TTS adapter's rules (400 ErrorResponse) → generation.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import AliasChoices, BaseModel, Field, field_validator, model_validator

from vomni_nb.sim import audio, faults, inputs, vlog, voices
from vomni_nb.sim.app_deps import require_json
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.families import Family
from vomni_nb.sim.media import FAIL_TOKEN
from vomni_nb.sim.speech_stream import raw_stream, sse_stream, whole_file_due

__all__ = ["router", "SpeechRequest", "usage_of"]

router = APIRouter()
router.include_router(voices.router)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NATIVE_RATE = 24000
SUPPORTED_RATES = (8000, 24000)  # Qwen3-TTS
CODEC_FRAMES_PER_S = 12.5  # Qwen3-TTS-12Hz: one output token per codec frame
MAX_INSTRUCTIONS = 500
LANGUAGES = ("Auto", "Chinese", "English", "Japanese", "Korean", "German", "French", "Russian", "Portuguese",
             "Spanish", "Italian")
ENGINE_HEADER = "X-Vomni-Speech-Engine"
OMNI_MESSAGE = (
    "The /v1/audio/speech endpoint is only supported for dedicated TTS models (e.g., Qwen3-TTS, Voxtral, Fish "
    "Speech, CosyVoice3, OmniVoice, VoxCPM2). For omni models like Qwen3-Omni, use /v1/chat/completions with "
    "'\"modalities\": [\"audio\"]' instead."
)
FAIL_MESSAGE = f"Simulated generation failure ({FAIL_TOKEN} in the input)."
_warned_tones = False


class SpeechRequest(BaseModel):
    """The fields and validators of vLLM-Omni's ``OpenAICreateSpeechRequest`` (unknown keys ignored)."""

    input: str
    model: str | None = None
    voice: str | None = Field(default=None, validation_alias=AliasChoices("voice", "speaker"))
    instructions: str | None = None
    response_format: Literal["wav", "pcm", "flac", "mp3", "opus"] = "wav"
    sample_rate: int | None = Field(default=None, gt=0)
    speed: float | None = Field(default=1.0, ge=0.25, le=4.0)
    stream_format: Literal["sse", "audio"] | None = None
    stream: bool = False
    task_type: Literal["CustomVoice", "VoiceDesign", "Base"] | None = None
    language: str | None = None
    ref_audio: str | list[str] | None = None
    ref_text: str | None = None
    ref_audio_2: str | None = None
    ambient_sound: str | None = None
    duration_seconds: float | None = Field(default=None, ge=0.0)
    x_vector_only_mode: bool | None = None
    speaker_embedding: list[float] | list[list[float]] | None = Field(default=None, max_length=8192)
    max_new_tokens: int | None = Field(default=None, ge=1, le=INT64_MAX)
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    initial_codec_chunk_frames: int | None = Field(default=None, ge=0, le=INT64_MAX)
    non_streaming_mode: bool | None = None
    extra_params: dict[str, Any] | None = None
    word_timestamps: bool = False

    @field_validator("voice", mode="before")
    @classmethod
    def _voice_id(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if "id" not in value:
                raise ValueError("voice dict must contain 'id'")
            return value["id"]
        return value

    @field_validator("ref_audio", mode="before")
    @classmethod
    def _ref_audio(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and not value:
            raise ValueError("'ref_audio' list cannot be empty")
        return value

    @model_validator(mode="before")
    @classmethod
    def _references_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("references"), list) and len(data["references"]) == 1:
            first = data["references"][0]
            if isinstance(first, dict) and isinstance(first.get("audio_path"), str):
                data = {**data, "ref_audio": first["audio_path"]}
                if isinstance(first.get("text"), str) and first["text"].strip():
                    data["ref_text"] = first["text"]
        return data

    @model_validator(mode="after")
    def _streaming_constraints(self) -> SpeechRequest:
        if self.speaker_embedding is not None and self.ref_audio is not None and not isinstance(self.ref_audio, list):
            raise ValueError("'speaker_embedding' and 'ref_audio' are mutually exclusive")
        if self.is_streaming():
            if self.response_format not in ("pcm", "wav"):
                raise ValueError(
                    "Streaming (stream=true, stream_format='audio', or stream_format='sse') "
                    "requires response_format='pcm' or 'wav'. "
                    f"Got response_format='{self.response_format}'."
                )
            if self.speed is None:
                self.speed = 1.0
        return self

    def is_raw_audio_stream(self) -> bool:
        return self.stream_format == "audio"

    def is_sse_stream(self) -> bool:
        return (self.stream or self.stream_format == "sse") and not self.is_raw_audio_stream()

    def is_streaming(self) -> bool:
        return self.is_raw_audio_stream() or self.is_sse_stream()


def error_response(message: str, code: int = 400, err_type: str = "BadRequestError", param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": err_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=code)


def diffusion_error(message: str, code: int = 400) -> Response:
    """Pure-diffusion speech errors are ``json.dumps`` with default separators (SS ``_diffusion_error_response``)."""
    err_type = "BadRequestError" if 400 <= code < 500 else "server_error"
    body = json.dumps({"error": {"message": message, "type": err_type, "param": None, "code": code}})
    return Response(body, status_code=code, media_type="application/json")


def text_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


def usage_of(request: SpeechRequest, speech: audio.Speech) -> dict[str, Any]:
    """``SpeechTokenUsage``: text tokens in, codec frames out (reference §3.9)."""
    text = text_tokens(request.input) + (text_tokens(request.instructions) if request.instructions else 0)
    output = math.ceil(speech.duration_s * CODEC_FRAMES_PER_S)
    return {
        "input_tokens": text,
        "output_tokens": output,
        "total_tokens": text + output,
        "input_token_details": {"text_tokens": text, "audio_tokens": 0},
    }


def _validate_ref_audio(ref_audio: Any) -> str | None:
    if not isinstance(ref_audio, str):
        return "ref_audio must be a URL (http/https), base64 data URL (data:...), or file URI (file://...)"
    scheme = ref_audio.split(":", 1)[0].lower() if ":" in ref_audio else ""
    if scheme not in ("http", "https", "data", "file"):
        return "ref_audio must be a URL (http/https), base64 data URL (data:...), or file URI (file://...)"
    return None


def _qwen3_tts_rules(request: SpeechRequest, config: SimConfig, store: voices.VoiceStore) -> str | None:
    """The Qwen3-TTS adapter's ``validate``: the first broken rule's message, or None."""
    if request.task_type is None and (request.ref_audio is not None or request.ref_text is not None):
        request.task_type = "Base"
    if request.voice is not None:
        request.voice = request.voice.lower()
        if request.voice in store.voices:
            request.task_type = "Base"
    task_type = request.task_type or "CustomVoice"
    variant = voices.tts_variant(config.model)
    if variant is not None and task_type != variant:
        return (
            f"Qwen3-TTS {variant} checkpoint does not support task_type='{task_type}'. "
            f"Use task_type='{variant}' or load the matching {task_type} checkpoint."
        )
    if not request.input or not request.input.strip():
        return "Input text cannot be empty"
    if request.language is not None:
        request.language = request.language.title()
        if request.language not in LANGUAGES:
            return f"Invalid language '{request.language}'. Supported: {', '.join(sorted(LANGUAGES))}"
    builtin = voices.builtin_speakers(config)
    if task_type == "CustomVoice":
        available = set(builtin) | set(store.voices)
        if not available:
            return (
                "This model does not support CustomVoice task (no speakers configured). "
                "Use task_type='Base' with ref_audio/ref_text for voice cloning, or use a CustomVoice model."
            )
        if request.voice is not None and request.voice not in available:
            return f"Invalid voice '{request.voice}'. Supported: {', '.join(sorted(available))}"
    if request.speaker_embedding is not None:
        if task_type != "Base":
            return "'speaker_embedding' is only valid for Base task"
        if not request.speaker_embedding:
            return "'speaker_embedding' must be a non-empty list of floats"
        request.x_vector_only_mode = True
        expected = voices.expected_embedding_dim(config.model)
        if len(request.speaker_embedding) != expected:
            return (
                f"speaker_embedding has {len(request.speaker_embedding)} dimensions; "
                f"expected {expected} for the loaded Qwen3-TTS model"
            )
    if task_type == "Base":
        needs_text = not request.x_vector_only_mode and not (request.ref_text and request.ref_text.strip())
        if request.voice is None:
            if request.ref_audio is None and request.speaker_embedding is None:
                return "Base task requires 'ref_audio' or 'speaker_embedding' for voice cloning"
            if request.ref_audio is not None and (error := _validate_ref_audio(request.ref_audio)):
                return error
            if needs_text:
                return (
                    "Base task requires non-empty 'ref_text' (transcript of the reference audio) "
                    "unless 'x_vector_only_mode' is enabled"
                )
        elif request.voice not in store.voices:
            if request.ref_audio is None:
                return f"Base task with built-in speaker '{request.voice}' requires 'ref_audio' for voice cloning"
    if task_type != "Base":
        if request.ref_text is not None:
            return "'ref_text' is only valid for Base task"
        if request.x_vector_only_mode is not None:
            return "'x_vector_only_mode' is only valid for Base task"
    if task_type == "VoiceDesign" and not request.instructions:
        return "VoiceDesign task requires 'instructions' to describe the voice"
    if request.instructions and len(request.instructions) > MAX_INSTRUCTIONS:
        return f"Instructions too long (max {MAX_INSTRUCTIONS} characters)"
    return None


def _ref_audio_pitch(ref_audio: str | list[str] | None) -> int | None:
    """The pitch of an inline ``data:`` reference clip, so a clone sounds like its reference (else None).

    Decoding stops at the 30 s a reference may last (a small FLAC can hold hours of silence); a clip
    outside 1-30 s raises ValueError as on the real server.
    """
    first = ref_audio[0] if isinstance(ref_audio, list) and ref_audio else ref_audio
    if not isinstance(first, str) or not first.startswith("data:") or ";base64," not in first:
        return None
    try:
        data = base64.b64decode(first.split(";base64,", 1)[1])
        samples, rate = voices.decode_sample(data)
    except (inputs.AudioTooLong, voices.SampleTooShort):
        raise
    except ValueError:  # an undecodable reference only loses its flavour; the real server would fetch it
        return None  # (decode_sample turns every decoder error into ValueError)
    return voices.pitch_of(samples, rate)


def _speak(request: SpeechRequest, config: SimConfig, store: voices.VoiceStore, ref_pitch: int | None) -> audio.Speech:
    voice = request.voice
    if voice is None:
        builtin = voices.builtin_speakers(config)
        voice = builtin[0] if builtin else (request.instructions or "")
    record = store.voices.get(voice.lower()) if voice else None
    pitch = record.get("pitch") if record else ref_pitch
    return audio.synthesize(
        request.input,
        voice=voice,
        speed=float(request.speed or 1.0),
        sample_rate=request.sample_rate or NATIVE_RATE,
        seed=request.seed or 0,
        language=request.language,
        pitch_hint=pitch,
        max_seconds=config.limits.max_speech_seconds,
    )


def _engine_headers(speech: audio.Speech) -> dict[str, str]:
    global _warned_tones
    if speech.engine == "tones" and not _warned_tones:
        _warned_tones = True
        vlog.warning("espeak-ng is not installed: vomni-sim speaks in tones (apt-get install espeak-ng for speech)",
                     where="speech.py:1")
    return {ENGINE_HEADER: speech.engine}


@router.post("/v1/audio/speech", dependencies=[Depends(require_json)])
async def create_speech(body: SpeechRequest, request: Request) -> Response:
    config: SimConfig = request.app.state.sim
    store = voices.store_of(request)
    if len(body.input) > config.limits.max_speech_input_chars:
        return error_response(
            f"Input text is {len(body.input)} characters long; vomni-sim speaks at most "
            f"{config.limits.max_speech_input_chars} per request (--max-speech-input-chars).", param="input",
        )
    if body.voice is not None and body.voice.lower() == voices.DEFAULT_VOICE and voices.DEFAULT_VOICE not in store.voices:
        body.voice = None
    if body.sample_rate is not None and config.family is not Family.TTS:
        # Without a TTS adapter no rate is supported, not even the native one.
        return error_response("sample_rate is not supported by the current TTS model")
    if body.sample_rate is not None and body.sample_rate not in SUPPORTED_RATES:
        rates = ", ".join(str(rate) for rate in SUPPORTED_RATES)
        return error_response(
            f"sample_rate={body.sample_rate} is not supported by the current TTS model; supported rates: {rates}"
        )
    if config.family in (Family.IMAGE, Family.VIDEO):
        return await _diffusion_speech(body, request, store)
    if body.model is not None and body.model != config.served_model_name:
        vlog.error(f"Error with model The model `{body.model}` does not exist.", where="serving_speech.py:2510")
        return error_response(f"The model `{body.model}` does not exist.", 404, "NotFoundError", "model")
    if body.is_streaming() and body.word_timestamps:
        return error_response(
            "word_timestamps=true is currently supported by the WebSocket /v1/audio/speech/stream path. "
            "Use session.config with stream_audio=true and response_format='pcm'."
        )
    if body.word_timestamps:
        return error_response("word_timestamps=true requires the server to be launched with --forced-aligner.")
    fmt = body.response_format
    if body.is_streaming() and body.speed is not None and body.speed != 1.0:
        label = "Streaming" if body.is_raw_audio_stream() else "SSE streaming"
        return error_response(
            f"{label} is not supported with speed adjustment. Use a non-streaming request or remove the speed parameter."
        )
    if config.family is Family.OMNI:
        return error_response(OMNI_MESSAGE)
    problem = _qwen3_tts_rules(body, config, store)
    if problem is not None:
        vlog.warning(f"[SpeechE2E] status=bad_request error={problem}", where="serving_speech.py:2700")
        return error_response(problem)
    refused = await faults.before_generation(request)
    if refused is not None:
        return refused
    request_id = f"speech-{uuid.uuid4().hex}"
    vlog.info(f"TTS speech request {request_id}: model=qwen3_tts", where="serving_speech.py:1984")
    factor = config.faults.speech_realtime_factor
    began = asyncio.get_running_loop().time()
    try:
        ref_pitch = await asyncio.to_thread(_ref_audio_pitch, body.ref_audio)
        speech = await faults.run_cancellable(
            request, request_id, asyncio.to_thread(_speak, body, config, store, ref_pitch)
        )
    except faults.ClientGone:
        return Response(status_code=499)
    except ValueError as exc:  # a reference clip outside 1-30 s, or speech longer than --max-speech-seconds
        return error_response(str(exc))
    headers = _engine_headers(speech)
    fail_after, fail_message = faults.midstream_error_after(request), faults.MIDSTREAM_MESSAGE
    if FAIL_TOKEN in body.input:
        fail_after, fail_message = 0, FAIL_MESSAGE
        if not body.is_streaming():
            vlog.error(f"[SpeechE2E] request_id={request_id} stream=false status=error error={FAIL_MESSAGE}",
                       where="serving_speech.py:2720")
            return error_response(f"Speech generation failed: {FAIL_MESSAGE}", 500, "InternalServerError")
    if body.is_raw_audio_stream():
        media_type = "audio/wav" if fmt == "wav" else "audio/pcm"
        stream = raw_stream(request_id, speech, fmt, fail_after, fail_message, factor)
        return StreamingResponse(stream, media_type=media_type, headers=headers)
    if body.is_sse_stream():
        events = sse_stream(request_id, usage_of(body, speech), speech, fmt, fail_after, fail_message, factor)
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    data = await asyncio.to_thread(audio.encode_audio, speech.pcm, speech.sample_rate, fmt)
    wait = began + whole_file_due(speech, factor) - asyncio.get_running_loop().time()
    if wait > 0:  # the rest of the generation time a GPU at --speech-realtime-factor would take
        try:
            await faults.run_cancellable(request, request_id, asyncio.sleep(wait))
        except faults.ClientGone:
            return Response(status_code=499)
    usage = usage_of(body, speech)
    headers.update({
        "X-VLLM-OMNI-INPUT-TOKENS": str(usage["input_tokens"]),
        "X-VLLM-OMNI-OUTPUT-TOKENS": str(usage["output_tokens"]),
        "X-VLLM-OMNI-TOTAL-TOKENS": str(usage["total_tokens"]),
        "X-VLLM-OMNI-INPUT-TEXT-TOKENS": str(usage["input_token_details"]["text_tokens"]),
        "X-VLLM-OMNI-INPUT-AUDIO-TOKENS": str(usage["input_token_details"]["audio_tokens"]),
    })
    vlog.info(f"[SpeechE2E] request_id={request_id} stream=false status=ok response_bytes={len(data)}",
              where="serving_speech.py:2602")
    return Response(data, media_type=audio.AUDIO_CONTENT_TYPES[fmt], headers=headers)


async def _diffusion_speech(body: SpeechRequest, request: Request, store: voices.VoiceStore) -> Response:
    """An image or video model behind /v1/audio/speech: the diffusion path runs and yields no audio."""
    if not body.input or not body.input.strip():
        return diffusion_error("Input text cannot be empty")
    if body.ref_audio is not None and (problem := _validate_ref_audio(body.ref_audio)):
        return diffusion_error(problem)
    if body.voice is not None and body.voice.lower() not in store.voices:
        names = ", ".join(sorted(set(store.voices) | {voices.DEFAULT_VOICE}))
        return diffusion_error(f"Invalid voice '{body.voice.lower()}'. Supported: {names}")
    refused = await faults.before_generation(request)
    if refused is not None:
        return refused
    return diffusion_error("TTS model did not produce audio output.")
