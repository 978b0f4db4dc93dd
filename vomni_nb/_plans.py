"""One plan per capability: build, send (through ``ClientCore.call``), parse. Shared by both clients.

Plans are generators (see :mod:`vomni_nb._core`); they do no I/O themselves, so the sync and async
clients run exactly the same logic, and tests drive them directly. Multi-step work (video: create,
poll, download, and DELETE on interrupt) is written once here. Each result gets one
:class:`~vomni_nb.provenance.Provenance`, made here from what was sent and what came back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import itertools
import logging
import secrets
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

from vomni_nb._core import ClientCore, Plan, Reply, Sleep
from vomni_nb.errors import APITimeoutError, InvalidRequestError, JobFailedError, ResponseFormatError
from vomni_nb.protocol import build as B
from vomni_nb.protocol.parse import (
    load_json,
    parse_chat_json,
    parse_images_json,
    parse_models,
    parse_speech,
    parse_video_job,
    video_result,
)
from vomni_nb.protocol.status import error_from_response, redact_data
from vomni_nb.protocol.streaming import ChatStreamState, SpeechStreamState
from vomni_nb.protocol.validate import check_names, fold_wire_spellings
from vomni_nb.provenance import Provenance
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult, VideoResult

__all__ = [
    "ImageOutput",
    "ProgressCallback",
    "Grid",
    "IMAGE_OPTIONS",
    "new_seed",
    "image_plan",
    "edit_plan",
    "chat_plan",
    "speech_plan",
    "video_plan",
    "cancel_video_plan",
    "video_jobs_plan",
    "models_plan",
    "health_plan",
    "version_plan",
    "voices_list_plan",
    "voice_upload_plan",
    "voice_delete_plan",
    "chat_stream_plan",
    "speech_stream_plan",
    "sweep_jobs",
]

ImageOutput = Union[ImageResult, ImageBatch]
ProgressCallback = Callable[[Mapping[str, Any]], None]
Grid = Union[Mapping[str, Sequence[Any]], Sequence[Mapping[str, Any]]]
FINAL_JOB_STATES = ("completed", "failed")

# The keyword arguments of image() besides the prompt: what a sweep's grid may vary.
IMAGE_OPTIONS = ("size", "steps", "guidance", "seed", "negative", "n", "output_format", "via", "model", "extra",
                 "num_inference_steps", "guidance_scale", "negative_prompt")


def new_seed() -> int:
    """A seed chosen client-side, so the result records the seed actually used (like the server: uint32)."""
    return secrets.randbelow(2**32)


@dataclasses.dataclass(frozen=True)
class _Sent:
    """A generation request that was answered: the reply, when it was sent (clock and wall time)."""

    reply: Reply
    started: float
    created: datetime.datetime


def _send_generation(core: ClientCore, spec: B.RequestSpec) -> Plan[_Sent]:
    """Send a generation request. Learning the model first keeps that request out of the timings."""
    yield from core.ensure_recorded_model()
    started, created = core.clock(), datetime.datetime.now(datetime.timezone.utc)
    reply = yield from core.call(spec)
    return _Sent(reply, started, created)


def _timings(core: ClientCore, sent: _Sent) -> dict[str, float]:
    return {"total_s": core.clock() - sent.started, "request_s": sent.reply.elapsed}


def _provenance(
    core: ClientCore, kind: str, sent: _Sent, params: Mapping[str, Any], prompt: Any, seed: int | None,
    timings: Mapping[str, float],
) -> Provenance:
    """The record of one generation (a stream's timings are filled in when it ends)."""
    return Provenance(
        kind=kind, server_url=core.base_url, model=params.get("model") or core.recorded_model, prompt=str(prompt),
        params=dict(params), seed=seed, timings=dict(timings), created=sent.created, request_id=sent.reply.request_id,
    )


def _images_output(images: list[ImageResult], n: int) -> ImageOutput:
    return images[0] if n == 1 and len(images) == 1 else ImageBatch(tuple(images), timings=images[0].timings)


def image_plan(
    core: ClientCore, prompt: str, *, via: str = "images", seed: int | None = None, n: int = 1, **options: Any
) -> Plan[ImageOutput]:
    """Text to image through /v1/images/generations (``via="images"``) or chat (``via="chat"``)."""
    options = fold_wire_spellings(options)
    seed = new_seed() if seed is None else seed
    model = core.model_to_send(options.pop("model", None))
    if via == "images":
        spec, params = B.build_image_request(prompt, model=model, seed=seed, n=n, **options)
    elif via == "chat":
        if options.pop("output_format", "png") not in ("png", None):
            raise InvalidRequestError("Images through chat are always PNG: drop output_format or use via='images'.")
        spec, params = B.build_chat_image_request(prompt, model=model, seed=seed, n=n, **options)
    else:
        raise InvalidRequestError(f"via must be 'images' or 'chat'; got {via!r}.")
    sent = yield from _send_generation(core, spec)
    provenance = _provenance(core, "image", sent, params, prompt, seed, _timings(core, sent))
    if via == "images":
        images = parse_images_json(sent.reply.content, provenance)
    else:
        images = list(parse_chat_json(sent.reply.content, provenance).images)
        if not images:
            raise ResponseFormatError("The chat answer holds no image (is this a diffusion image model?).")
    return _images_output(images, n)


def edit_plan(
    core: ClientCore, prompt: str, images: Sequence[B.MediaSource], *, seed: int | None = None, n: int = 1,
    **options: Any,
) -> Plan[ImageOutput]:
    options = fold_wire_spellings(options)
    seed = new_seed() if seed is None else seed
    model = core.model_to_send(options.pop("model", None))
    spec, params = B.build_edit_request(prompt, images, model=model, seed=seed, n=n, **options)
    sent = yield from _send_generation(core, spec)
    provenance = _provenance(core, "edit", sent, params, prompt, seed, _timings(core, sent))
    return _images_output(parse_images_json(sent.reply.content, provenance), n)


def chat_plan(core: ClientCore, prompt: Any, **options: Any) -> Plan[ChatResult]:
    options["model"] = core.model_to_send(options.get("model"))
    spec, params = B.build_chat_request(prompt, **options)
    sent = yield from _send_generation(core, spec)
    provenance = _provenance(core, "chat", sent, params, params["prompt"], params.get("seed"), _timings(core, sent))
    return parse_chat_json(sent.reply.content, provenance)


def speech_plan(core: ClientCore, text: str, **options: Any) -> Plan[SpeechResult]:
    options["model"] = core.model_to_send(options.get("model"))
    spec, params = B.build_speech_request(text, **options)
    sent = yield from _send_generation(core, spec)
    provenance = _provenance(core, "speech", sent, params, text, params.get("seed"), _timings(core, sent))
    return parse_speech(sent.reply.content, sent.reply.headers, provenance, params["response_format"])


def _job_spec(job_id: str, suffix: str = "", method: str = "GET") -> B.RequestSpec:
    return B.RequestSpec(method, f"/v1/videos/{job_id}{suffix}")


def video_plan(
    core: ClientCore,
    prompt: str,
    *,
    seed: int | None = None,
    poll_interval: float = 1.0,
    timeout: float | None = 1800.0,
    on_progress: ProgressCallback | None = None,
    **options: Any,
) -> Plan[VideoResult]:
    """Create a job, poll it (reporting progress), download the MP4; an interrupt DELETEs the job."""
    options = fold_wire_spellings(options)
    seed = new_seed() if seed is None else seed
    spec, params = B.build_video_request(prompt, model=core.model_to_send(options.pop("model", None)), seed=seed,
                                         **options)
    sent = yield from _send_generation(core, spec)
    job = parse_video_job(sent.reply.content)
    try:
        while True:
            if on_progress is not None:
                on_progress(job)
            if job["status"] in FINAL_JOB_STATES:
                break
            if timeout is not None and core.clock() - sent.started > timeout:
                yield from cancel_video_plan(core, job["id"])
                raise APITimeoutError(
                    f"Video job {job['id']} not done after {timeout:g} s; it was cancelled. "
                    "Raise timeout=... to wait longer.",
                    url=core.base_url,
                )
            yield Sleep(poll_interval)
            poll = yield from core.call(_job_spec(job["id"]), raise_for_status=False)
            job = _polled_job(core, poll, job["id"])
        if job["status"] == "failed":
            error: Mapping[str, Any] = job["error"] if isinstance(job.get("error"), Mapping) else {}
            reason = str(redact_data(str(error.get("message", "no reason given")), (core.api_key,))).rstrip(".")
            raise JobFailedError(
                f"Video job {job['id']} failed: {reason}. Try fewer frames, a smaller size, or see the server log.",
                url=core.base_url,
                job=redact_data(job, (core.api_key,)),
            )
        download = yield from core.call(_job_spec(job["id"], "/content"))
    except (KeyboardInterrupt, asyncio.CancelledError):
        if job.get("status") not in FINAL_JOB_STATES:
            core.log(logging.INFO, "interrupted: cancelling video job %s", job["id"])
            try:
                yield from cancel_video_plan(core, job["id"])
            except Exception:  # noqa: BLE001 - the interrupt is what the user must see
                pass
        raise
    # One total: the creation request's own time says nothing about a job that ran for minutes.
    provenance = _provenance(core, "video", sent, params, prompt, seed, {"total_s": core.clock() - sent.started})
    return video_result(download.content, job, provenance)


def _polled_job(core: ClientCore, reply: Reply, job_id: str) -> dict[str, Any]:
    """A poll answer: the job (a failed job comes back with an error status but the job body)."""
    if reply.status_code < 400:
        return parse_video_job(reply.content)
    try:
        body = load_json(reply.content)
    except ResponseFormatError:
        body = None
    if isinstance(body, dict) and body.get("status") == "failed" and body.get("id") == job_id:
        return body
    path = f"/v1/videos/{job_id}"
    raise error_from_response(
        reply.status_code, reply.content, reply.headers, url=core.base_url + path, path=path, secrets=(core.api_key,)
    )


def cancel_video_plan(core: ClientCore, job_id: str) -> Plan[dict[str, Any]]:
    reply = yield from core.call(B.RequestSpec("DELETE", f"/v1/videos/{job_id}", retryable=False))
    body = load_json(reply.content, "delete answer")
    return body if isinstance(body, dict) else {"deleted": True}


def _get_json_plan(core: ClientCore, path: str, params: Mapping[str, Any] | None = None) -> Plan[Any]:
    reply = yield from core.call(B.RequestSpec("GET", path, params=params))
    return load_json(reply.content)


def video_jobs_plan(core: ClientCore, limit: int, order: str) -> Plan[list[dict[str, Any]]]:
    body = yield from _get_json_plan(core, "/v1/videos", {"limit": limit, "order": order})
    return list(body.get("data", [])) if isinstance(body, dict) else []


def models_plan(core: ClientCore) -> Plan[list[str]]:
    reply = yield from core.call(B.RequestSpec("GET", "/v1/models"))
    served = parse_models(reply.content)
    core.learn_served_models(served)
    return served


def health_plan(core: ClientCore) -> Plan[dict[str, Any]]:
    """``/health`` as a dict; an unhealthy (503) server is an answer here, not an error."""
    reply = yield from core.call(B.RequestSpec("GET", "/health", retryable=False), raise_for_status=False)
    if reply.status_code not in (200, 503):
        raise core.status_error(reply, B.RequestSpec("GET", "/health"))
    try:
        body = load_json(reply.content, "health answer") if reply.content else {}
    except ResponseFormatError:
        body = {}
    body = dict(body) if isinstance(body, dict) else {}
    body.setdefault("status", "healthy" if reply.status_code == 200 else "unhealthy")
    body["ok"] = reply.status_code == 200
    return body


def version_plan(core: ClientCore) -> Plan[str]:
    body = yield from _get_json_plan(core, "/version")
    if not isinstance(body, dict) or not isinstance(body.get("version"), str):
        raise ResponseFormatError(f"/version answered without a version: {str(body)[:80]}")
    return str(body["version"])


def voices_list_plan(core: ClientCore) -> Plan[dict[str, Any]]:
    body = yield from _get_json_plan(core, "/v1/audio/voices")
    if not isinstance(body, dict) or not isinstance(body.get("voices"), list):
        raise ResponseFormatError(f"The voice list has no 'voices': {str(body)[:80]}")
    body.setdefault("uploaded_voices", [])
    return body


def voice_upload_plan(core: ClientCore, name: str, audio: B.MediaSource, **options: Any) -> Plan[dict[str, Any]]:
    reply = yield from core.call(B.build_voice_upload(name, audio, **options))
    body = load_json(reply.content, "voice upload answer")
    voice = body.get("voice") if isinstance(body, dict) else None
    if not isinstance(voice, dict):
        raise ResponseFormatError(f"The voice upload answer has no 'voice': {str(body)[:80]}")
    return voice


def voice_delete_plan(core: ClientCore, name: str) -> Plan[dict[str, Any]]:
    path = f"/v1/audio/voices/{urllib.parse.quote(name, safe='')}"
    reply = yield from core.call(B.RequestSpec("DELETE", path, retryable=False))
    body = load_json(reply.content, "voice delete answer")
    return body if isinstance(body, dict) else {}


def chat_stream_plan(core: ClientCore, prompt: Any, **options: Any) -> Plan[tuple[Reply, ChatStreamState, float]]:
    """Open a streamed chat: (open reply, its state, start time). Retries only before the stream."""
    options["model"] = core.model_to_send(options.get("model"))
    spec, params = B.build_chat_request(prompt, stream=True, **options)
    sent = yield from _send_generation(core, spec)
    provenance = _provenance(core, "chat", sent, params, params["prompt"], params.get("seed"), {})
    return sent.reply, ChatStreamState(provenance, sent.reply.headers.get("content-type", "")), sent.started


def speech_stream_plan(
    core: ClientCore, text: str, *, mode: str = "audio", **options: Any
) -> Plan[tuple[Reply, SpeechStreamState, float]]:
    """Open streamed speech (``mode`` "audio" = raw bytes, "sse" = events): (reply, its state, start time)."""
    options["model"] = core.model_to_send(options.get("model"))
    spec, params = B.build_speech_request(text, stream_mode=mode, **options)
    sent = yield from _send_generation(core, spec)
    provenance = _provenance(core, "speech", sent, params, text, params.get("seed"), {})
    return sent.reply, SpeechStreamState(provenance, params["response_format"], mode), sent.started


def sweep_jobs(seeds: Sequence[int] | None, grid: Grid | None, seed: int | None = None) -> list[dict[str, Any]]:
    """The per-request overrides of a sweep: every grid combination for every seed.

    ``grid`` is a mapping of image() argument -> values (their product is taken) or a list of override
    dicts. ``seed`` is one seed for every cell; without seeds, one seed chosen here is shared by all
    combinations, so they differ only in the grid.
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
    return [{**combo, "seed": seed} for combo in combos for seed in seed_list]
