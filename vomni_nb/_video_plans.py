"""Video jobs as plans: create, follow (reporting progress), download; pick up a job later; cancel.

Written once for both clients (see :mod:`vomni_nb._plans` for how a plan becomes a method).

Rules:

1. Ctrl-C (or task cancellation) during ``video()`` cancels the job it started (DELETE) before the
   error propagates, so an interrupted notebook leaves no GPU work behind.
2. Running out of ``timeout=`` does not: the job goes on, and the error (a JobTimeoutError with
   ``job_id``) says how to pick it up: ``wait_video(job_id)`` (which also works from another kernel,
   or after a restart: the job lives on the server) or ``download_video(job_id)`` once it is done.
3. ``wait_video`` only waits: Ctrl-C stops the waiting and leaves the job running.
4. Progress goes to ``on_progress`` (:mod:`vomni_nb.progress`); by default a live line in a notebook.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Mapping
from typing import Any, Literal

from vomni_nb import _advice
from vomni_nb._core import ClientCore, Plan, Reply, Sleep, call_arguments
from vomni_nb._plans import new_seed, provenance_for, send_generation
from vomni_nb.errors import Interrupted, JobFailedError, JobTimeoutError, ResponseFormatError
from vomni_nb.progress import OnProgress, ProgressCallback, resolve
from vomni_nb.protocol import build as B
from vomni_nb.protocol.media import MediaSource
from vomni_nb.protocol.parse import load_json, parse_video_job, video_result
from vomni_nb.protocol.status import advice_for, already_advised, error_from_response, redact_data
from vomni_nb.protocol.validate import fold_wire_spellings
from vomni_nb.provenance import Provenance
from vomni_nb.results import VideoResult

__all__ = ["video", "wait_video", "download_video", "cancel_video", "video_jobs", "job_provenance"]

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
    on_progress: OnProgress = "auto",
    model: str | None = None,
    extra: Mapping[str, Any] | None = None,
    num_inference_steps: int | None = None,
    guidance_scale: float | None = None,
    negative_prompt: str | None = None,
) -> Plan[VideoResult]:
    """Create a video job, follow it (polling every ``poll_interval`` s) and download the MP4.

    ``image`` a first frame to start from; the sampling arguments are image()'s. ``on_progress``:
    by default a live status line in a notebook (queued → in progress → done), nothing elsewhere;
    ``None`` for none, or a callable given each job record. After ``timeout`` seconds the call stops
    waiting but the job goes on: the JobTimeoutError names ``wait_video(job_id)`` to pick it up.
    Ctrl-C cancels the job on the server (DELETE).
    """
    options = fold_wire_spellings(call_arguments(locals(), "core", "prompt", "seed", "poll_interval", "timeout",
                                                 "on_progress", "model"))
    seed = new_seed() if seed is None else seed
    spec, params = B.build_video_request(prompt, model=core.model_to_send(model), seed=seed, **options)
    report = resolve(on_progress)
    sent = yield from send_generation(core, spec, "video", model)
    job = parse_video_job(sent.reply.content)
    job = yield from _follow(core, job, sent.started, poll_interval, timeout, report, cancel_on_interrupt=True)
    download = yield from _content(core, job)
    # One total: the creation request's own time says nothing about a job that ran for minutes.
    provenance = provenance_for(core, "video", sent, params, prompt, seed, {"total_s": core.clock() - sent.started})
    return video_result(download.content, job, provenance)


def wait_video(
    core: ClientCore,
    /,
    job_id: str,
    *,
    poll_interval: float = 1.0,
    timeout: float | None = 1800.0,
    on_progress: OnProgress = "auto",
) -> Plan[VideoResult]:
    """Wait for a video job started earlier and download it: a ``video()`` that timed out, a job from
    another kernel, or one from before a kernel restart (jobs live on the server; ``video_jobs()``
    lists them). Ctrl-C stops the waiting and leaves the job running; ``cancel_video`` stops it."""
    started = core.clock()
    job = yield from _job(core, job_id)
    job = yield from _follow(core, job, started, poll_interval, timeout, resolve(on_progress), cancel_on_interrupt=False)
    download = yield from _content(core, job)
    return video_result(download.content, job, job_provenance(core, job))


def download_video(core: ClientCore, /, job_id: str) -> Plan[VideoResult]:
    """Download a finished video job as a VideoResult (a JobTimeoutError if it is still running:
    ``wait_video(job_id)`` waits for it; a JobFailedError if it failed)."""
    job = yield from _job(core, job_id)
    if job["status"] == "failed":
        _raise_failed(core, job)
    if job["status"] != "completed":
        raise JobTimeoutError(f"Video job {job_id} is still {job['status'].replace('_', ' ')}: wait for it with "
                              f"client.wait_video({job_id!r}).", url=core.base_url, job_id=job_id, job=job)
    download = yield from _content(core, job)
    return video_result(download.content, job, job_provenance(core, job))


def job_provenance(core: ClientCore, job: Mapping[str, Any]) -> Provenance:
    """What a job record tells about how its video was made (for a job this call did not create: no seed)."""
    params = {key: job[key] for key in ("model", "size", "seconds", "fps", "num_frames") if job.get(key) is not None}
    created = job.get("created_at")
    when = datetime.datetime.fromtimestamp(created, datetime.timezone.utc) if isinstance(created, (int, float)) else None
    timings = {"inference_s": float(job["inference_time_s"])} if isinstance(job.get("inference_time_s"), (int, float)) \
        else {}
    model = job.get("model") if isinstance(job.get("model"), str) else core.recorded_model
    return Provenance(kind="video", server_url=core.base_url, model=model, prompt=str(job.get("prompt") or ""),
                      params=params, seed=None, timings=timings, created=when)


def _job(core: ClientCore, job_id: str) -> Plan[dict[str, Any]]:
    reply = yield from core.call(_job_spec(job_id), raise_for_status=False)
    return _polled_job(core, reply, job_id)


def _content(core: ClientCore, job: Mapping[str, Any]) -> Plan[Reply]:
    reply = yield from core.call(_job_spec(job["id"], "/content"))
    return reply


def _follow(core: ClientCore, job: dict[str, Any], started: float, poll_interval: float, timeout: float | None,
            report: ProgressCallback | None, *, cancel_on_interrupt: bool) -> Plan[dict[str, Any]]:
    """Poll ``job`` until it completes (returned), fails (JobFailedError) or ``timeout`` runs out."""
    try:
        while True:
            if report is not None:
                report(job)
            if job["status"] in FINAL_JOB_STATES:
                break
            if timeout is not None and core.clock() - started >= timeout:
                if report is not None:  # the timeout given, so the status line and the error say the same time
                    report({**job, "status": "left_running", "timeout_s": timeout})
                raise JobTimeoutError(_advice.video_left_running(job["id"], timeout), url=core.base_url,
                                      job_id=job["id"], job=job)
            # The last sleep ends at the timeout, not up to a poll interval after it.
            yield Sleep(poll_interval if timeout is None else min(poll_interval, started + timeout - core.clock()))
            poll = yield from core.call(_job_spec(job["id"]), raise_for_status=False)
            job = _polled_job(core, poll, job["id"])
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if job.get("status") in FINAL_JOB_STATES:
            raise
        if not cancel_on_interrupt:
            if report is not None:
                report({**job, "status": "left_running"})
            if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
                raise Interrupted(_advice.interrupted(f"video job {job['id']} is still running: "
                                                      f"client.wait_video({job['id']!r}) resumes"),
                                  url=core.base_url) from exc
            raise
        core.log(logging.INFO, "interrupted: cancelling video job %s", job["id"])
        try:
            yield from cancel_video(core, job["id"])
        except Exception:  # noqa: BLE001 - the interrupt is what the user must see
            pass
        if report is not None:
            report({**job, "status": "cancelled"})
        if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            raise Interrupted(_advice.interrupted(f"video job {job['id']} was cancelled on the server"),
                              url=core.base_url) from exc
        raise
    if job["status"] == "failed":
        _raise_failed(core, job)
    return job


def _raise_failed(core: ClientCore, job: Mapping[str, Any]) -> None:
    """A failed job's error; the job record echoes the prompt, so it is redacted like an error body."""
    error: Mapping[str, Any] = job["error"] if isinstance(job.get("error"), Mapping) else {}
    reason = str(redact_data(str(error.get("message", "no reason given")), (core.api_key,))).rstrip(".")
    code = error.get("code")
    # The advice for the failure's own status (507: memory), said once: not when the server's words say it already.
    advice = advice_for(code) if isinstance(code, int) and code != 500 else \
        "Try fewer frames or a smaller size, or see the server log (`%omni_server logs`)."
    if already_advised(reason, advice):
        advice = ""
    failure = JobFailedError(f"Video job {job['id']} failed: {reason}." + (f" {advice}" if advice else ""),
                             url=core.base_url, job=redact_data(job, (core.api_key,)))
    failure.advice = advice
    raise failure


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
    body = load_json(reply.content, "video job list")
    jobs = body.get("data") if isinstance(body, dict) else None
    # Only job records: a hostile list's other entries (or a "data" that is no list) must not reach the caller.
    return [job for job in jobs if isinstance(job, dict)] if isinstance(jobs, list) else []
