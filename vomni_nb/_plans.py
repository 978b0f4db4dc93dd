"""Each generating capability once, as a plan: build, send (through ``ClientCore.call``), parse.

A plan's signature is the method's: ``OmniClient.image`` and ``AsyncOmniClient.image`` are
``image`` below, run by each client's send loop (:mod:`vomni_nb._base_client`), with this docstring.
Plans are generators (see :mod:`vomni_nb._core`) and do no I/O, so both clients run exactly the same
logic and tests drive them directly. Each result gets one :class:`~vomni_nb.provenance.Provenance`,
made here from what was sent and what came back. Video jobs are in :mod:`vomni_nb._video_plans`,
the server's own endpoints (models, health, voices) in :mod:`vomni_nb._service_plans`.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Union

from vomni_nb import _advice
from vomni_nb._core import ClientCore, Gather, Plan, Reply, call_arguments
from vomni_nb.errors import (
    APIError,
    APIStatusError,
    Interrupted,
    InvalidRequestError,
    PartialBatchError,
    ResponseFormatError,
    WrongServerError,
)
from vomni_nb.protocol import build as B
from vomni_nb.protocol import capabilities
from vomni_nb.protocol.media import MediaSource
from vomni_nb.protocol.parse import parse_chat_json, parse_images_json
from vomni_nb.protocol.status import is_wrong_kind_of_server
from vomni_nb.protocol.streaming import ChatStreamState, StreamState
from vomni_nb.protocol.validate import (
    ImageFormat,
    ImageRoute,
    Modality,
    SpeechFormat,
    check_names,
    fold_wire_spellings,
)
from vomni_nb.provenance import Provenance
from vomni_nb.results import ChatResult, FailedImage, ImageBatch, ImageResult

__all__ = [
    "ImageOutput",
    "Grid",
    "OpenedStream",
    "Sent",
    "IMAGE_OPTIONS",
    "new_seed",
    "check_server",
    "answer_shape",
    "send_generation",
    "provenance_for",
    "sweep_jobs",
    "failed_image",
    "image",
    "images",
    "edit",
    "chat",
    "chat_stream",
]

ImageOutput = Union[ImageResult, ImageBatch]
Grid = Union[Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]]

# The keyword arguments of image() besides the prompt: what a sweep's grid may vary.
IMAGE_OPTIONS = ("size", "steps", "guidance", "seed", "negative", "n", "output_format", "via", "model", "extra",
                 "num_inference_steps", "guidance_scale", "negative_prompt")


def new_seed() -> int:
    """A seed chosen client-side, so the result records the seed actually used (like the server: uint32)."""
    return secrets.randbelow(2**32)


@dataclasses.dataclass(frozen=True)
class Sent:
    """A generation request that was answered: the reply, and when it was sent (clock and wall time)."""

    reply: Reply
    started: float
    created: datetime.datetime


@dataclasses.dataclass(frozen=True)
class OpenedStream:
    """A stream whose answer has begun: each client wraps it in its own stream object."""

    reply: Reply
    state: StreamState[Any]
    started: float


def check_server(core: ClientCore, task: str, model: str | None = None) -> None:
    """Refuse, before sending, a task the server's model cannot do (speech from an image model).

    ``model`` is the one the request names, else the server's (given, from a Server handle, or
    learned). Only what :func:`~vomni_nb.protocol.capabilities.answers` knows never works is refused;
    an unknown model id is left to the server.
    """
    model = model or core.recorded_model
    found = capabilities.capability(model)
    if model is None or found is None or task in found.answered:
        return
    sentence = _advice.wrong_server(model, found.noun, task, found.family)
    raise WrongServerError(sentence, model=model, task=task, advice=sentence.split("; ", 1)[-1])


def send_generation(core: ClientCore, spec: B.RequestSpec, task: str | None = None,
                    model: str | None = None) -> Plan[Sent]:
    """Send a generation request for ``task`` (see :func:`check_server`, done once the model is known).

    Learning the model first keeps that request out of the timings. A server that answers that its
    model cannot do this kind of request at all (vLLM-Omni's 503 "No diffusion stage") is a
    WrongServerError, not an overload to retry.
    """
    yield from core.ensure_recorded_model()
    if task is not None:
        check_server(core, task, model)
    started, created = core.clock(), datetime.datetime.now(datetime.timezone.utc)
    try:
        reply = yield from core.call(spec)
    except KeyboardInterrupt as exc:
        # The send loop closed the connection, so the server aborted the generation: say so in one line.
        if isinstance(exc, Interrupted):
            raise
        raise Interrupted(_advice.interrupted(), url=core.base_url) from exc
    except APIStatusError as exc:
        if not is_wrong_kind_of_server(exc.status_code, exc.message):
            raise
        raise WrongServerError(exc.message, model=model or core.recorded_model, task=task, advice=exc.advice) from exc
    return Sent(reply, started, created)


def provenance_for(core: ClientCore, kind: str, sent: Sent, params: Mapping[str, Any], prompt: Any,
                   seed: int | None, timings: Mapping[str, float] | None = None) -> Provenance:
    """The record of one generation; timings default to the request's (a stream's come when it ends)."""
    if timings is None:
        timings = {"total_s": core.clock() - sent.started, "request_s": sent.reply.elapsed}
    return Provenance(
        kind=kind, server_url=core.base_url, model=params.get("model") or core.recorded_model, prompt=str(prompt),
        params=dict(params), seed=seed, timings=dict(timings), created=sent.created, request_id=sent.reply.request_id,
    )


def answer_shape(core: ClientCore, model: str | None, modalities: Sequence[str] | str | None, voice: str | None,
                 audio_format: str | None, *, streaming: bool) -> dict[str, Any]:
    """The modalities and audio format a chat asks for, made explicit and light.

    vLLM-Omni answers an omni model's chat with text *and* WAV audio when no ``modalities`` are sent
    (about 1.5 MB per answer in a notebook). So: text unless audio is asked for (``modalities``
    naming it, or a ``voice`` / ``audio_format``); a spoken answer comes as MP3 (about 14 times
    lighter) unless ``audio_format`` says otherwise, except in a stream, whose chunks stay WAV so a
    live player can play them as they come. A diffusion model's chat answers with pictures, so
    nothing is added there.
    """
    if modalities is None:
        if capabilities.family_of(model or core.recorded_model) in ("image", "video"):
            return {}
        modalities = ["text", "audio"] if voice is not None or audio_format is not None else ["text"]
    wanted = modalities.split(",") if isinstance(modalities, str) else list(modalities)
    if "audio" in wanted and audio_format is None and not streaming:
        audio_format = "mp3"
    return {"modalities": wanted, "audio_format": audio_format}


def _images_output(found: list[ImageResult], n: int) -> ImageOutput:
    return found[0] if n == 1 and len(found) == 1 else ImageBatch(tuple(found), timings=found[0].timings)


def image(
    core: ClientCore,
    /,
    prompt: str,
    *,
    size: str | tuple[int, int] | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    negative: str | None = None,
    n: int = 1,
    output_format: ImageFormat = "png",
    via: ImageRoute = "images",
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
) -> Plan[ImageResult | ImageBatch]:
    """Text to image: an ImageResult (an ImageBatch when ``n`` > 1).

    ``size`` "WIDTHxHEIGHT" or (width, height); ``steps`` denoising steps; ``guidance`` CFG scale;
    ``negative`` what to avoid; ``seed`` (chosen here when not given, so the result records it);
    ``via="chat"`` sends it through chat completions (always PNG); ``extra`` adds wire fields.
    ``num_inference_steps``, ``guidance_scale``, ``negative_prompt`` are the wire spellings of steps,
    guidance and negative (as in ``result.params``); ``client.image(**result.recipe)`` repeats a result.
    """
    options = fold_wire_spellings(call_arguments(locals(), "core", "prompt", "seed", "n", "via", "model"))
    seed = new_seed() if seed is None else seed
    to_send = core.model_to_send(model)
    if via == "images":
        spec, params = B.build_image_request(prompt, model=to_send, seed=seed, n=n, **options)
    elif via == "chat":
        if options.pop("output_format", "png") not in ("png", None):
            raise InvalidRequestError("Images through chat are always PNG: drop output_format or use via='images'.")
        spec, params = B.build_chat_image_request(prompt, model=to_send, seed=seed, n=n, **options)
    else:
        raise InvalidRequestError(f"via must be 'images' or 'chat'; got {via!r}.")
    sent = yield from send_generation(core, spec, "image", to_send)
    provenance = provenance_for(core, "image", sent, params, prompt, seed)
    if via == "images":
        found = parse_images_json(sent.reply.content, provenance)
    else:
        found = list(parse_chat_json(sent.reply.content, provenance).images)
        if not found:
            raise ResponseFormatError("The chat answer holds no image (is this a diffusion image model?).")
    return _images_output(found, n)


def images(
    core: ClientCore,
    /,
    prompt: str,
    *,
    seeds: Sequence[int] | None = None,
    grid: Grid | None = None,
    concurrency: int = 4,
    strict: bool = False,
    size: str | tuple[int, int] | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    negative: str | None = None,
    n: int = 1,
    output_format: ImageFormat = "png",
    via: ImageRoute = "images",
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
) -> Plan[ImageBatch]:
    """A sweep: one image per seed x grid combination, ``concurrency`` requests at a time.

    ``grid`` maps image() arguments to values (``{"guidance": [2, 4], "steps": [4, 8]}``: every
    combination) or is a list of argument dicts; ``seed`` is one seed for every cell, ``seeds`` a
    sweep of them. The other arguments are image()'s, for every request. From sync code the requests
    run on a private event loop in a background thread (never ``asyncio.run`` in the caller's loop,
    so this works in a Jupyter cell); Ctrl-C cancels them all and closes their connections.

    A sweep is never all-or-nothing: a request that fails leaves a ``FailedImage`` in its place and the
    other images are returned (``batch.failures``); ``strict=True`` raises ``PartialBatchError`` instead,
    which carries that batch (``.partial``).
    """
    options = call_arguments(locals(), "core", "prompt", "seeds", "grid", "concurrency", "seed", "strict")
    jobs = sweep_jobs(seeds, grid, seed)
    if concurrency < 1:
        raise InvalidRequestError("concurrency must be at least 1.")
    yield from core.ensure_recorded_model()
    check_server(core, "image", model)  # once, not once per cell of the grid
    plans = [image(core, prompt, **{**options, **job}) for job in jobs]
    try:
        outputs = yield Gather(plans, concurrency, settle=True)
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted):
            raise
        raise Interrupted(_advice.interrupted("the server aborted the sweep's requests"), url=core.base_url) from exc
    assert isinstance(outputs, list)
    for output in outputs:  # bad input (the same for every cell) is the sweep's error, not a cell's
        if isinstance(output, Exception) and not isinstance(output, APIError):
            raise output
    placed = [failed_image(output, prompt, {**options, **job}, server_url=core.base_url, model=core.recorded_model)
              if isinstance(output, APIError) else output for output, job in zip(outputs, jobs)]
    batch = ImageBatch(tuple(item for output in placed
                             for item in (output.images if isinstance(output, ImageBatch) else (output,))))
    if strict and batch.failures:
        raise PartialBatchError(f"{len(batch.failures)} of {len(jobs)} requests of the sweep failed (first: "
                                f"{batch.failures[0].message}); the images that were made are in .partial.",
                                partial=batch, errors=[failed.error for failed in batch.failures])
    return batch


_WIRE_NAMES = {"steps": "num_inference_steps", "guidance": "guidance_scale", "negative": "negative_prompt"}


def failed_image(error: Exception, prompt: str, options: Mapping[str, Any], *, server_url: str | None = None,
                 model: str | None = None) -> FailedImage:
    """The place of a failed request of a sweep: what was asked (params under their wire names) and why it failed."""
    params = {_WIRE_NAMES.get(key, key): value for key, value in options.items()
              if value is not None and key not in ("extra", "seed")}
    if isinstance(params.get("size"), (tuple, list)):
        params["size"] = "x".join(str(side) for side in params["size"])
    seed = options.get("seed")
    provenance = Provenance(kind="image", server_url=server_url, model=model or options.get("model"), prompt=prompt,
                            params=params, seed=seed if isinstance(seed, int) else None)
    return FailedImage(error, provenance)


def edit(
    core: ClientCore,
    /,
    image: MediaSource | Sequence[MediaSource],
    prompt: str,
    *,
    size: str | tuple[int, int] | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    negative: str | None = None,
    n: int = 1,
    output_format: ImageFormat = "png",
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
) -> Plan[ImageResult | ImageBatch]:
    """Edit an image (bytes, a path or a result; or a list of them) following ``prompt``.

    ``size`` defaults to the first input's; the other arguments are image()'s.
    """
    options = fold_wire_spellings(call_arguments(locals(), "core", "image", "prompt", "seed", "n", "model"))
    sources = list(image) if isinstance(image, (list, tuple)) else [image]
    seed = new_seed() if seed is None else seed
    spec, params = B.build_edit_request(prompt, sources, model=core.model_to_send(model), seed=seed, n=n, **options)
    sent = yield from send_generation(core, spec, "edit", model)
    provenance = provenance_for(core, "edit", sent, params, prompt, seed)
    return _images_output(parse_images_json(sent.reply.content, provenance), n)


def chat(
    core: ClientCore,
    /,
    prompt: str | Sequence[Mapping[str, Any]],
    *,
    system: str | None = None,
    images: MediaSource | Sequence[MediaSource] = (),
    audio: MediaSource | Sequence[MediaSource] = (),
    modalities: Sequence[Modality] | str | None = None,
    voice: str | None = None,
    audio_format: SpeechFormat | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Plan[ChatResult]:
    """One chat answer to ``prompt`` (text, or a whole message list).

    ``system`` a system message; ``images`` / ``audio`` media to attach (bytes, paths or results);
    ``modalities`` what to answer with: by default text only (the server's own default adds WAV
    audio, ~1.5 MB per answer); ``["text", "audio"]`` (or giving ``voice`` / ``audio_format``) adds
    a spoken answer, embedded as MP3 unless ``audio_format`` names another format (wav, pcm, flac,
    opus). A diffusion image model answers with pictures whatever the default. ``extra`` adds wire fields.
    """
    arguments = call_arguments(locals(), "core")
    yield from core.ensure_recorded_model()
    arguments.update(answer_shape(core, model, modalities, voice, audio_format, streaming=False))
    spec, params = B.build_chat_request(**{**arguments, "model": core.model_to_send(model)})
    sent = yield from send_generation(core, spec, "chat", model)
    provenance = provenance_for(core, "chat", sent, params, params["prompt"], params.get("seed"))
    return parse_chat_json(sent.reply.content, provenance)


def chat_stream(
    core: ClientCore,
    /,
    prompt: str | Sequence[Mapping[str, Any]],
    *,
    system: str | None = None,
    images: MediaSource | Sequence[MediaSource] = (),
    audio: MediaSource | Sequence[MediaSource] = (),
    modalities: Sequence[Modality] | str | None = None,
    voice: str | None = None,
    audio_format: SpeechFormat | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Plan[OpenedStream]:
    """A streamed chat answer: iterate it for TextDelta / AudioDelta / ImageDelta events; ``finish()``
    gives the ChatResult. The arguments are chat()'s (text only unless audio is asked for), but a
    spoken answer streams as WAV chunks a live player can play. Retries happen only before the stream begins."""
    arguments = call_arguments(locals(), "core")
    yield from core.ensure_recorded_model()
    arguments.update(answer_shape(core, model, modalities, voice, audio_format, streaming=True))
    spec, params = B.build_chat_request(**{**arguments, "model": core.model_to_send(model)}, stream=True)
    sent = yield from send_generation(core, spec, "chat", model)
    provenance = provenance_for(core, "chat", sent, params, params["prompt"], params.get("seed"), {})
    return OpenedStream(sent.reply, ChatStreamState(provenance, sent.reply.headers.get("content-type", "")),
                        sent.started)


def sweep_jobs(seeds: Sequence[int] | None, grid: Grid | None, seed: int | None = None) -> list[dict[str, Any]]:
    """The per-request overrides of a sweep: every grid combination for every seed.

    ``grid`` is a mapping of image() argument -> values (their product is taken) or a list of override
    dicts; its names are checked. ``seed`` is one seed for every cell; without seeds, one seed chosen
    here is shared by all combinations, so they differ only in the grid.
    """
    if seed is not None:
        if seeds is not None:
            raise InvalidRequestError("Give seed= (one seed for the whole grid) or seeds= (a sweep), not both.")
        seeds = [seed]
    if grid is None:
        combos: list[dict[str, Any]] = [{}]
    elif isinstance(grid, Mapping):
        keys = list(grid)
        combos = [dict(zip(keys, values)) for values in itertools.product(*(list(grid[k]) for k in keys))]
    else:
        combos = [dict(item) for item in grid]
    for combo in combos:
        check_names("A sweep's grid", combo, IMAGE_OPTIONS)
    seed_list = list(seeds) if seeds is not None else [new_seed()]
    if not combos or not seed_list:
        raise InvalidRequestError("A sweep needs at least one seed and one parameter combination.")
    return [{**combo, "seed": each} for combo in combos for each in seed_list]
