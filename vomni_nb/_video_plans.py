"""Video jobs as plans: create, poll (reporting progress), download; DELETE on timeout or interrupt.

Written once for both clients (see :mod:`vomni_nb._plans` for how a plan becomes a method). Rule:
a job this call started and did not see finish is cancelled before the call returns or raises, so an
interrupted notebook leaves no GPU work behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from vomni_nb._core import ClientCore, Plan, Reply, Sleep, call_arguments
from vomni_nb._plans import new_seed, provenance_for, send_generation
from vomni_nb.errors import APITimeoutError, JobFailedError, ResponseFormatError
from vomni_nb.protocol import build as B
from vomni_nb.protocol.media import MediaSource
from vomni_nb.protocol.parse import load_json, parse_video_job, video_result
from vomni_nb.protocol.status import error_from_response, redact_data
from vomni_nb.protocol.validate import fold_wire_spellings
from vomni_nb.results import VideoResult

__all__ = ["ProgressCallback", "video", "cancel_video", "video_jobs"]

ProgressCallback = Callable[[Mapping[str, Any]], None]
FINAL_JOB_STATES = ("completed", "failed")


def _job_spec(job_id: str, suffix: str = "") -> B.RequestSpec:
    return B.RequestSpec("GET", f"/v1/videos/{job_id}{suffix}")


def video(
    core: ClientCore,
    /,
    prompt: str,
    *,
    size: str | tuple[int, int] | None = None,
    seconds: int | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    negative: str | None = None,
    seed: int | None = None,
    image: MediaSource | None = None,
    poll_interval: float = 1.0,
    timeout: float | None = 1800.0,
    on_progress: ProgressCallback | None = None,
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
) -> Plan[VideoResult]:
    """Create a video job, poll it every ``poll_interval`` s (``on_progress(job)`` each time), download the MP4.

    ``image`` a first frame to start from; ``timeout`` seconds before the job is cancelled; the
    sampling arguments are image()'s. Ctrl-C cancels the job on the server (DELETE).
    """
    options = fold_wire_spellings(call_arguments(locals(), "core", "prompt", "seed", "poll_interval", "timeout",
                                                 "on_progress", "model"))
    seed = new_seed() if seed is None else seed
    spec, params = B.build_video_request(prompt, model=core.model_to_send(model), seed=seed, **options)
    sent = yield from send_generation(core, spec)
    job = parse_video_job(sent.reply.content)
    try:
        while True:
            if on_progress is not None:
                on_progress(job)
            if job["status"] in FINAL_JOB_STATES:
                break
            if timeout is not None and core.clock() - sent.started > timeout:
                yield from cancel_video(core, job["id"])
                raise APITimeoutError(
                    f"Video job {job['id']} not done after {timeout:g} s; it was cancelled. "
                    "Raise timeout=... to wait longer.",
                    url=core.base_url,
                )
            yield Sleep(poll_interval)
            poll = yield from core.call(_job_spec(job["id"]), raise_for_status=False)
            job = _polled_job(core, poll, job["id"])
        if job["status"] == "failed":
            _raise_failed(core, job)
        download = yield from core.call(_job_spec(job["id"], "/content"))
    except (KeyboardInterrupt, asyncio.CancelledError):
        if job.get("status") not in FINAL_JOB_STATES:
            core.log(logging.INFO, "interrupted: cancelling video job %s", job["id"])
            try:
                yield from cancel_video(core, job["id"])
            except Exception:  # noqa: BLE001 - the interrupt is what the user must see
                pass
        raise
    # One total: the creation request's own time says nothing about a job that ran for minutes.
    provenance = provenance_for(core, "video", sent, params, prompt, seed, {"total_s": core.clock() - sent.started})
    return video_result(download.content, job, provenance)


def _raise_failed(core: ClientCore, job: Mapping[str, Any]) -> None:
    """A failed job's error; the job record echoes the prompt, so it is redacted like an error body."""
    error: Mapping[str, Any] = job["error"] if isinstance(job.get("error"), Mapping) else {}
    reason = str(redact_data(str(error.get("message", "no reason given")), (core.api_key,))).rstrip(".")
    raise JobFailedError(
        f"Video job {job['id']} failed: {reason}. Try fewer frames, a smaller size, or see the server log.",
        url=core.base_url,
        job=redact_data(job, (core.api_key,)),
    )


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


def cancel_video(core: ClientCore, /, job_id: str) -> Plan[dict[str, Any]]:
    """Cancel (DELETE) a video job, finished or not."""
    reply = yield from core.call(B.RequestSpec("DELETE", f"/v1/videos/{job_id}", retryable=False))
    body = load_json(reply.content, "delete answer")
    return body if isinstance(body, dict) else {"deleted": True}


def video_jobs(
    core: ClientCore, /, *, limit: int = 20, order: Literal["asc", "desc"] = "desc"
) -> Plan[list[dict[str, Any]]]:
    """The server's video jobs, newest first by default."""
    reply = yield from core.call(B.RequestSpec("GET", "/v1/videos", params={"limit": limit, "order": order}))
    body = load_json(reply.content)
    return list(body.get("data", [])) if isinstance(body, dict) else []
