"""Speech as plans: one utterance (whole or streamed), a batch of them, and what each TTS checkpoint needs.

Written once for both clients (see :mod:`vomni_nb._plans` for how a plan becomes a method).

Qwen3-TTS comes as three checkpoints that speak differently, and the server's refusals name its
internals (``task_type='Base'``), not the checkpoint to use. Rules: what the client knows from the
model id alone is refused before sending (plain speech on a Base checkpoint, ``ref_audio`` on a
CustomVoice one, a VoiceDesign checkpoint without ``instructions``); what only the server knows (is
this voice an uploaded one?) is translated from its answer. Either way the error says which
checkpoint does what (:func:`checkpoint_advice`).
"""

from __future__ import annotations

import os  # noqa: F401 - typing.get_type_hints resolves MediaSource's "os.PathLike[str]" in these globals
from collections.abc import Mapping, Sequence
from typing import Any

from vomni_nb import _advice
from vomni_nb._core import ClientCore, Plan, call_arguments
from vomni_nb._plans import OpenedStream, provenance_for, send_generation
from vomni_nb.errors import BadRequestError, BatchItemError, InvalidRequestError, WrongServerError
from vomni_nb.protocol import build as B
from vomni_nb.protocol.batch import build_speech_batch_request, item_failed, parse_speech_batch
from vomni_nb.protocol.capabilities import tts_variant
from vomni_nb.protocol.media import MediaSource
from vomni_nb.protocol.status import redact_error
from vomni_nb.protocol.parse import parse_speech
from vomni_nb.protocol.streaming import SpeechStreamState
from vomni_nb.protocol.validate import SpeechFormat, SpeechStreamMode, StreamingSpeechFormat
from vomni_nb.results import SpeechResult

__all__ = ["speak", "speak_stream", "speak_batch", "checkpoint_advice", "check_checkpoint"]

# The server's words for "this checkpoint cannot speak like that" -> which advice explains it.
_REFUSALS = (
    ("does not support task_type='base'", "base"),  # an uploaded voice (or ref_audio) on CustomVoice/VoiceDesign
    ("does not support task_type='customvoice'", "voice"),  # a built-in voice (or none) on Base
    ("does not support task_type='voicedesign'", "voice"),
    ("base task requires", "voice"),
    ("no speakers configured", "voice"),
    ("voicedesign task requires 'instructions'", "design"),
)


def checkpoint_advice(model: str | None, reason: str) -> str | None:
    """Which checkpoint does what, when ``reason`` (the server's words) is a checkpoint refusal; else None."""
    lowered = reason.lower()
    kind = next((kind for phrase, kind in _REFUSALS if phrase in lowered), None)
    if kind is None:
        return None
    name = model or "This server's TTS model"
    if kind == "base":
        return _advice.voices_need_base(name)
    if kind == "design" or tts_variant(model) == "VoiceDesign":
        return _advice.voice_design_needs_instructions(name)
    return _advice.base_needs_a_voice(name)


def check_checkpoint(model: str | None, *, voice: str | None, ref_audio: Any, instructions: str | None,
                     ref_text: str | None = None, extra: Mapping[str, Any] | None = None) -> None:
    """Refuse before sending what the checkpoint (known from its id) can never speak."""
    variant = tts_variant(model)
    extra = extra or {}
    cloning = ref_audio is not None or "ref_audio" in extra or "speaker_embedding" in extra
    advice = None
    if variant == "Base" and voice is None and not cloning:
        advice = _advice.base_needs_a_voice(str(model))
    elif variant in ("CustomVoice", "VoiceDesign") and cloning:
        advice = _advice.voices_need_base(str(model))
    elif variant == "VoiceDesign" and not instructions and not cloning and "instructions" not in extra:
        advice = _advice.voice_design_needs_instructions(str(model))
    elif variant == "Base" and ref_audio is not None and not ref_text and not extra.get("x_vector_only_mode"):
        raise InvalidRequestError("ref_audio needs ref_text= (what the sample says), so the voice can be cloned; "
                                  "or pass extra={'x_vector_only_mode': True} to clone from the sound alone.")
    if advice is not None:
        raise WrongServerError(advice, model=model, task="speech", advice=advice.split(": ", 1)[-1])


def _translated(core: ClientCore, model: str | None, error: BadRequestError) -> BaseException:
    """The server's checkpoint refusal with advice that names checkpoints (or the error as it was)."""
    served = model or core.recorded_model
    advice = checkpoint_advice(served, error.message)
    if advice is None:
        return error
    cause = error.message[: -len(error.advice)].rstrip() if error.advice and error.message.endswith(error.advice) \
        else error.message
    return WrongServerError(f"{cause} {advice}", model=served, task="speech", advice=advice)


def _send_speech(core: ClientCore, spec: B.RequestSpec, model: str | None) -> Plan[Any]:
    try:
        return (yield from send_generation(core, spec, "speech", model))
    except BadRequestError as exc:
        translated = _translated(core, model, exc)
        if translated is exc:
            raise
        raise translated from exc


def speak(
    core: ClientCore,
    /,
    text: str,
    *,
    voice: str | None = None,
    response_format: SpeechFormat = "wav",
    speed: float | None = None,
    instructions: str | None = None,
    language: str | None = None,
    sample_rate: int | None = None,
    seed: int | None = None,
    ref_audio: MediaSource | None = None,
    ref_text: str | None = None,
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Plan[SpeechResult]:
    """Text to speech: a SpeechResult holding the whole file.

    ``voice`` a built-in voice (CustomVoice checkpoints) or an uploaded one (Base checkpoints, such as
    Qwen/Qwen3-TTS-12Hz-1.7B-Base); ``ref_audio`` clones a voice from a sample (bytes, a path, a
    result or a URL; Base checkpoints), with ``ref_text`` its transcript; ``instructions`` a speaking
    style (the voice itself on VoiceDesign checkpoints); ``speed`` 0.25-4; ``language``;
    ``sample_rate`` in Hz (default: the model's); ``extra`` adds wire fields. A request the
    checkpoint cannot speak is a WrongServerError saying which checkpoint can.
    """
    arguments = call_arguments(locals(), "core")
    spec, params = B.build_speech_request(**{**arguments, "model": core.model_to_send(model)})
    yield from core.ensure_recorded_model()
    check_checkpoint(model or core.recorded_model, voice=voice, ref_audio=ref_audio, instructions=instructions,
                     ref_text=ref_text, extra=extra)
    sent = yield from _send_speech(core, spec, model)
    provenance = provenance_for(core, "speech", sent, params, text, params.get("seed"))
    return parse_speech(sent.reply.content, sent.reply.headers, provenance, params["response_format"])


def speak_stream(
    core: ClientCore,
    /,
    text: str,
    *,
    mode: SpeechStreamMode = "audio",
    voice: str | None = None,
    response_format: StreamingSpeechFormat = "wav",
    speed: float | None = None,
    instructions: str | None = None,
    language: str | None = None,
    sample_rate: int | None = None,
    seed: int | None = None,
    ref_audio: MediaSource | None = None,
    ref_text: str | None = None,
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Plan[OpenedStream]:
    """Streamed speech (wav or pcm): ``mode="audio"`` raw bytes, ``mode="sse"`` events. Iterate it for
    AudioDelta events; ``finish()`` gives the SpeechResult. The other arguments are speak()'s."""
    arguments = call_arguments(locals(), "core", "mode")
    spec, params = B.build_speech_request(**{**arguments, "model": core.model_to_send(model)}, stream_mode=mode)
    yield from core.ensure_recorded_model()
    check_checkpoint(model or core.recorded_model, voice=voice, ref_audio=ref_audio, instructions=instructions,
                     ref_text=ref_text, extra=extra)
    sent = yield from _send_speech(core, spec, model)
    provenance = provenance_for(core, "speech", sent, params, text, params.get("seed"), {})
    return OpenedStream(sent.reply, SpeechStreamState(provenance, params["response_format"], mode), sent.started)


def speak_batch(
    core: ClientCore,
    /,
    items: Sequence[str | Mapping[str, Any]],
    *,
    voice: str | None = None,
    response_format: SpeechFormat = "wav",
    speed: float | None = None,
    instructions: str | None = None,
    language: str | None = None,
    sample_rate: int | None = None,
    ref_audio: MediaSource | None = None,
    ref_text: str | None = None,
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Plan[list[SpeechResult | BatchItemError]]:
    """Many utterances in one request (``/v1/audio/speech/batch``): a list with one entry per item, in order.

    ``items`` are texts, or dicts of a ``text`` and its own voice, instructions, response_format,
    sample_rate, speed, language, ref_audio or ref_text. The other arguments are shared by every item
    (speak()'s, less ``seed``, which the batch route does not take). Each entry is a SpeechResult, or,
    for an item the server could not speak, a BatchItemError in its place (the others are kept):
    ``[r for r in results if isinstance(r, SpeechResult)]``. Bad input fails the whole call before
    anything is sent.
    """
    shared = call_arguments(locals(), "core", "items", "model")
    yield from core.ensure_recorded_model()
    served = model or core.recorded_model
    spec, batch = build_speech_batch_request(items, shared, model=core.model_to_send(model))
    for item in batch:
        merged = item.merged
        check_checkpoint(served, voice=merged.get("voice"), ref_audio=merged.get("ref_audio"),
                         instructions=merged.get("instructions"), ref_text=merged.get("ref_text"),
                         extra=merged.get("extra"))
    sent = yield from _send_speech(core, spec, model)
    provenances = [provenance_for(core, "speech", sent, item.params, item.text, None) for item in batch]
    results = parse_speech_batch(sent.reply.content, provenances, [item.params["response_format"] for item in batch],
                                 url=core.base_url + spec.path)
    entries = [_with_checkpoint_advice(entry, served) for entry in results]
    # A failed item's reason is the server's text, and it is returned, not raised past the Stepper: redact it here.
    for entry in entries:
        if isinstance(entry, BatchItemError):
            redact_error(entry, (core.api_key,))
    return entries


def _with_checkpoint_advice(entry: SpeechResult | BatchItemError, model: str | None) -> SpeechResult | BatchItemError:
    """A failed item whose reason is a checkpoint refusal gets the advice that names checkpoints."""
    if isinstance(entry, SpeechResult):
        return entry
    advice = checkpoint_advice(model, entry.reason)
    if advice is None:
        return entry
    return BatchItemError(item_failed(entry.index, entry.reason, advice), url=entry.url, index=entry.index,
                          input=entry.input, reason=entry.reason, advice=advice)

