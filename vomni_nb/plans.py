"""One plan per capability: build, send (through ClientCore.call), parse. Shared by both clients.

Plans are generators (see :mod:`vomni_nb.clientcore`); they do no I/O themselves, so the sync and
async clients run exactly the same logic. Multi-step work (video: create, poll, download, and
DELETE on interrupt) is written once here.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

from vomni_nb.clientcore import ClientCore, Plan, Reply, Sleep
from vomni_nb.errors import APITimeoutError, InvalidRequestError, JobFailedError, ResponseFormatError
from vomni_nb.protocol import build as B
from vomni_nb.protocol.parse import (
    Context,
    load_json,
    parse_chat_json,
    parse_images_json,
    parse_models,
    parse_speech,
    parse_video_job,
    video_result,
)
from vomni_nb.protocol.status import error_from_response
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult, VideoResult

__all__ = [
    "new_seed",
    "image_plan",
    "edit_plan",
    "chat_plan",
    "speech_plan",
    "video_plan",
    "cancel_video_plan",
    "get_json_plan",
    "models_plan",
    "health_plan",
    "version_plan",
    "voices_list_plan",
    "voice_upload_plan",
    "voice_delete_plan",
    "chat_stream_plan",
    "speech_stream_plan",
    "sweep_jobs",
    "flatten_images",
]

ImageOutput = Union[ImageResult, ImageBatch]
ProgressCallback = Callable[[Mapping[str, Any]], None]
FINAL_JOB_STATES = ("completed", "failed")


def new_seed() -> int:
    """A seed chosen client-side, so the result records the seed actually used (like the server: uint32)."""
    return secrets.randbelow(2**32)


def _timings(started: float, reply: Reply) -> dict[str, float]:
    return {"total_s": time.perf_counter() - started, "request_s": reply.elapsed}


def _send_timed(core: ClientCore, spec: B.RequestSpec) -> Plan[tuple[Reply, float]]:
    """Send a generation request: (reply, start time). Learning the model first keeps it out of the timings."""
    yield from core.learn_model()
    started = time.perf_counter()
    reply = yield from core.call(spec)
    return reply, started


def _context(
    core: ClientCore, params: Mapping[str, Any], seed: int | None, prompt: str, timings: Mapping[str, float]
) -> Context:
    return Context(
        server_url=core.base_url, model=params.get("model") or core.provenance_model, params=dict(params), seed=seed,
        prompt=prompt, timings=dict(timings),
    )


def _images_output(images: list[ImageResult], n: int) -> ImageOutput:
    return images[0] if n == 1 and len(images) == 1 else ImageBatch(tuple(images), timings=images[0].timings)


def image_plan(
    core: ClientCore, prompt: str, *, via: str = "images", seed: int | None = None, n: int = 1, **options: Any
) -> Plan[ImageOutput]:
    """Text to image through /v1/images/generations (``via="images"``) or chat (``via="chat"``)."""
    seed = new_seed() if seed is None else seed
    model = core.model_for(options.pop("model", None))
    if via == "images":
        spec, params = B.build_image_request(prompt, model=model, seed=seed, n=n, **options)
    elif via == "chat":
        if options.pop("output_format", "png") not in ("png", None):
            raise InvalidRequestError("Images through chat are always PNG: drop output_format or use via='images'.")
        spec, params = B.build_chat_image_request(prompt, model=model, seed=seed, n=n, **options)
    else:
        raise InvalidRequestError(f"via must be 'images' or 'chat'; got {via!r}.")
    reply, started = yield from _send_timed(core, spec)
    context = _context(core, params, seed, prompt, _timings(started, reply))
    if via == "images":
        images = parse_images_json(reply.content, context)
    else:
        images = list(parse_chat_json(reply.content, context).images)
        if not images:
            raise ResponseFormatError("The chat answer holds no image (is this a diffusion image model?).")
    return _images_output(images, n)


def edit_plan(
    core: ClientCore,
    prompt: str,
    images: Sequence[B.MediaSource],
    *,
    seed: int | None = None,
    n: int = 1,
    **options: Any,
) -> Plan[ImageOutput]:
    seed = new_seed() if seed is None else seed
    model = core.model_for(options.pop("model", None))
    spec, params = B.build_edit_request(prompt, images, model=model, seed=seed, n=n, **options)
    reply, started = yield from _send_timed(core, spec)
    context = _context(core, params, seed, prompt, _timings(started, reply))
    return _images_output(parse_images_json(reply.content, context), n)


def chat_plan(core: ClientCore, prompt: Any, **options: Any) -> Plan[ChatResult]:
    options["model"] = core.model_for(options.get("model"))
    spec, params = B.build_chat_request(prompt, **options)
    reply, started = yield from _send_timed(core, spec)
    context = _context(core, params, params.get("seed"), str(params["prompt"]), _timings(started, reply))
    return parse_chat_json(reply.content, context)


def speech_plan(core: ClientCore, text: str, **options: Any) -> Plan[SpeechResult]:
    options["model"] = core.model_for(options.get("model"))
    spec, params = B.build_speech_request(text, **options)
    reply, started = yield from _send_timed(core, spec)
    context = _context(core, params, params.get("seed"), text, _timings(started, reply))
    return parse_speech(reply.content, reply.headers, context, params["response_format"])


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
    seed = new_seed() if seed is None else seed
    spec, params = B.build_video_request(prompt, model=core.model_for(options.pop("model", None)), seed=seed, **options)
    reply, started = yield from _send_timed(core, spec)
    job = parse_video_job(reply.content)
    try:
        while True:
            if on_progress is not None:
                on_progress(job)
            if job["status"] in FINAL_JOB_STATES:
                break
            if timeout is not None and time.perf_counter() - started > timeout:
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
            raise JobFailedError(
                f"Video job {job['id']} failed: {str(error.get('message', 'no reason given')).rstrip('.')}. "
                "Try fewer frames, a smaller size, or see the server log.",
                url=core.base_url,
                job=job,
            )
        download = yield from core.call(_job_spec(job["id"], "/content"))
    except (KeyboardInterrupt, asyncio.CancelledError):
        if job.get("status") not in FINAL_JOB_STATES:
            try:
                yield from cancel_video_plan(core, job["id"])
            except Exception:  # noqa: BLE001 - the interrupt is what the user must see
                pass
        raise
    context = _context(core, params, seed, prompt, {"total_s": time.perf_counter() - started})
    return video_result(download.content, job, context)


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


def get_json_plan(core: ClientCore, path: str, params: Mapping[str, Any] | None = None) -> Plan[Any]:
    reply = yield from core.call(B.RequestSpec("GET", path, params=params))
    return load_json(reply.content)


def models_plan(core: ClientCore) -> Plan[list[str]]:
    reply = yield from core.call(B.RequestSpec("GET", "/v1/models"))
    core.served_models = parse_models(reply.content)
    return list(core.served_models)


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
    body = yield from get_json_plan(core, "/version")
    if not isinstance(body, dict) or not isinstance(body.get("version"), str):
        raise ResponseFormatError(f"/version answered without a version: {str(body)[:80]}")
    return str(body["version"])


def voices_list_plan(core: ClientCore) -> Plan[dict[str, Any]]:
    body = yield from get_json_plan(core, "/v1/audio/voices")
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


def chat_stream_plan(core: ClientCore, prompt: Any, **options: Any) -> Plan[tuple[Reply, Any, float]]:
    """Open a streamed chat: (open reply, ChatStreamState, start time). Retries only before the stream."""
    from vomni_nb.protocol.streaming import ChatStreamState

    options["model"] = core.model_for(options.get("model"))
    spec, params = B.build_chat_request(prompt, stream=True, **options)
    reply, started = yield from _send_timed(core, spec)
    context = _context(core, params, params.get("seed"), str(params["prompt"]), {})
    return reply, ChatStreamState(context), started


def speech_stream_plan(
    core: ClientCore, text: str, *, mode: str = "audio", **options: Any
) -> Plan[tuple[Reply, Any, float]]:
    """Open streamed speech (``mode`` "audio" = raw bytes, "sse" = events): (reply, SpeechStreamState, start)."""
    from vomni_nb.protocol.streaming import SpeechStreamState

    options["model"] = core.model_for(options.get("model"))
    spec, params = B.build_speech_request(text, stream_mode=mode, **options)
    reply, started = yield from _send_timed(core, spec)
    context = _context(core, params, params.get("seed"), text, {})
    return reply, SpeechStreamState(context, params["response_format"], mode), started


def sweep_jobs(
    seeds: Sequence[int] | None, grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """The per-request overrides of a sweep: every grid combination for every seed.

    ``grid`` is a mapping of parameter -> values (their product is taken) or a list of override dicts.
    Without seeds, one seed chosen here is shared by all combinations, so they differ only in the grid.
    """
    import itertools

    if grid is None:
        combos: list[dict[str, Any]] = [{}]
    elif isinstance(grid, Mapping):
        keys = list(grid)
        combos = [dict(zip(keys, values)) for values in itertools.product(*(list(grid[k]) for k in keys))]
    else:
        combos = [dict(item) for item in grid]
    seed_list = list(seeds) if seeds is not None else [new_seed()]
    if not combos or not seed_list:
        raise InvalidRequestError("A sweep needs at least one seed and one parameter combination.")
    return [{**combo, "seed": seed} for combo in combos for seed in seed_list]


def flatten_images(outputs: Sequence[ImageOutput]) -> ImageBatch:
    images: list[ImageResult] = []
    for output in outputs:
        images.extend(output.images if isinstance(output, ImageBatch) else [output])
    return ImageBatch(tuple(images))
