"""``/v1/videos``: async jobs, listing, download, delete and the blocking ``/sync`` route (reference §3.12).

The request is read in video_form.py, the jobs are kept in video_jobs.py (in process memory: they
vanish on restart, as on the real server); files go to
``SimConfig.storage_dir`` (private, see storage.py). At most ``--max-video-jobs`` are queued or running;
finished jobs and their files expire after ``--video-ttl`` (``expires_at`` says when) or when more than
``--max-stored-videos`` are kept. The clip has the geometry a Wan2.x pipeline gives it (wan.py: frames
rounded to 4k+1, sizes floored, image-to-video sized from its picture), and a finished job reports the
frames it really has, as the real job record does. A job walks queued → in_progress → completed | failed. Generation takes a
simulated time proportional to the pixels rendered (plus ``--latency``), so a client can watch
``in_progress``. A prompt containing ``[[fail]]`` makes the job fail (500) for tests and demos.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from vomni_nb.sim import faults, storage, video, vlog, wan
from vomni_nb.sim.faults import sim_config
from vomni_nb.sim.families import Family
from vomni_nb.sim.media import FAIL_TOKEN
from vomni_nb.sim.video_form import VideoForm, VideoRequest
from vomni_nb.sim.video_jobs import job_status_code, jobs_of, new_job

__all__ = ["router", "FAIL_TOKEN"]

router = APIRouter()

# Simulated compute: seconds per rendered pixel-frame (49 frames of 480x272 ≈ 0.3 s), capped.
SIM_SECONDS_PER_PIXEL_FRAME = 5e-8
SIM_MAX_SECONDS = 8.0


class GenerationFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def generate(request: Request, form: VideoRequest, video_id: str) -> tuple[bytes, wan.Geometry]:
    """Render the clip, then wait out a simulated compute time; raises GenerationFailed."""
    config = sim_config(request)
    req = form.req
    if FAIL_TOKEN in req.prompt:
        raise GenerationFailed(500, f"Simulated generation failure ({FAIL_TOKEN} in the prompt).")
    if config.family is not Family.VIDEO:
        raise GenerationFailed(500, f"Model '{config.served_model_name}' produced no video output.")
    width, height, fps, frames = req.resolved()
    shape = wan.geometry(config.model, width, height, frames, form.picture.size if form.picture else None)
    seed = req.seed if req.seed is not None else random.getrandbits(32)
    vlog.info(f"Video request {video_id}: {shape.width}x{shape.height}, {shape.frames} frames at {fps:g} fps, "
              f"seed {seed}", where="serving_video.py:412")
    started = time.perf_counter()
    cancel = threading.Event()
    try:
        data = await asyncio.to_thread(
            video.render_video, req.prompt, seed=seed, width=shape.width, height=shape.height,
            num_frames=shape.frames, fps=fps, negative_prompt=req.negative_prompt, steps=req.num_inference_steps,
            guidance=req.guidance_scale, cancel=cancel, picture=form.picture,
        )
    except asyncio.CancelledError:
        cancel.set()  # the worker thread stops at its next frame instead of finishing the clip
        raise
    except ValueError as exc:
        raise GenerationFailed(400, str(exc)) from exc
    simulated = min(SIM_MAX_SECONDS, shape.width * shape.height * shape.frames * SIM_SECONDS_PER_PIXEL_FRAME)
    await asyncio.sleep(max(0.0, simulated - (time.perf_counter() - started)))
    return data, shape


def _storage_path(request: Request, video_id: str) -> Path:
    directory = sim_config(request).storage_dir
    assert directory is not None, "the app's lifespan sets the storage directory"
    return directory / f"{video_id}.mp4"


async def run_job(request: Request, form: VideoRequest, job: dict[str, Any]) -> None:
    """queued (while --latency runs) → in_progress (rendering) → completed | failed; cancelled = removed."""
    video_id = job["id"]
    started = time.perf_counter()
    try:
        refused = await faults.before_generation(request, abortable=False)
        if refused is not None:  # an injected 503/507/engine death fails the job with that code
            body = json.loads(bytes(refused.body))
            raise GenerationFailed(refused.status_code, body["error"]["message"])
        job["status"] = "in_progress"
        data, shape = await generate(request, form, video_id)
        path = _storage_path(request, video_id)
        await asyncio.to_thread(storage.write_private, path, data)
        vlog.info(f"Video request {video_id} persisted {path.name} output file.", where="api_server.py:440")
        finished = time.time()
        job.update(
            status="completed", progress=100, file_name=f"{video_id}.mp4", completed_at=int(finished),
            inference_time_s=time.perf_counter() - started,
            expires_at=int(finished + sim_config(request).limits.video_ttl),
            # The clip's own metadata replaces what the request asked for: 8 frames asked, 9 made.
            num_frames=shape.frames, duration_s=shape.frames / job["fps"],
        )
        jobs_of(request).finished[video_id] = finished
    except asyncio.CancelledError:
        _storage_path(request, video_id).unlink(missing_ok=True)
        jobs_of(request).pop(video_id)
        faults.log_abort(video_id)
        raise
    except Exception as exc:  # a background task has nobody to raise to: the job records the failure
        code, message = (exc.code, exc.message) if isinstance(exc, GenerationFailed) else (500, str(exc))
        vlog.error(f"Video generation failed for id={video_id}: {message}", where="api_server.py:470")
        job.update(status="failed", completed_at=int(time.time()), error={"code": code, "message": message},
                   inference_time_s=time.perf_counter() - started)
        jobs_of(request).finished[video_id] = time.time()


@router.post("/v1/videos")
async def create_video(request: Request, form: VideoForm) -> JSONResponse:
    if isinstance(form, JSONResponse):
        return form
    jobs = jobs_of(request)
    limit = sim_config(request).limits.max_video_jobs
    if jobs.unfinished() >= limit:
        raise HTTPException(
            429, f"{limit} video jobs are already queued or running (--max-video-jobs); wait for one to finish or "
                 "delete one, then retry.", headers={"Retry-After": "2"},
        )
    job = new_job(form.model, form.req)
    jobs.add(job)
    snapshot = json.loads(json.dumps(job))  # the answer shows the job as created, whatever the task does next
    jobs.tasks[job["id"]] = asyncio.create_task(run_job(request, form, job))
    return JSONResponse(snapshot)


@router.post("/v1/videos/sync")
async def create_video_sync(request: Request, form: VideoForm) -> Response:
    if isinstance(form, JSONResponse):
        return form
    refused = await faults.before_generation(request)
    if refused is not None:
        return refused
    request_id = f"video_sync-{uuid.uuid4().hex}"
    started = time.perf_counter()
    try:
        data, _ = await faults.run_cancellable(request, request_id, generate(request, form, request_id))
    except faults.ClientGone:
        return Response(status_code=499)
    except GenerationFailed as exc:
        if 400 <= exc.code < 500:
            raise HTTPException(exc.code, exc.message) from exc
        raise HTTPException(500, f"Video generation failed: {exc.message}") from exc
    return Response(
        data,
        media_type="video/mp4",
        headers={
            "X-Request-Id": request_id,
            "X-Model": form.model,
            "X-Inference-Time-S": f"{time.perf_counter() - started:.3f}",
            "X-Stage-Durations": "{}",
            "X-Peak-Memory-MB": f"{0.0:.3f}",
        },
    )


@router.get("/v1/videos")
async def list_videos(
    request: Request,
    after: str | None = None,
    limit: int | None = Query(None, ge=0, le=100),
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> JSONResponse:
    jobs = jobs_of(request)
    records = sorted(jobs.jobs.values(), key=lambda j: (j["created_at"], jobs.order[j["id"]]), reverse=order == "desc")
    if after is not None:
        index = next((i for i, job in enumerate(records) if job["id"] == after), None)
        records = [] if index is None else records[index + 1 :]
    has_more = False
    if limit is not None:
        has_more = len(records) > limit
        records = records[:limit]
    return JSONResponse({
        "first_id": records[0]["id"] if records else None,
        "last_id": records[-1]["id"] if records else None,
        "has_more": has_more,
        "data": records,
        "object": "list",
    })


@router.get("/v1/videos/{video_id}")
async def retrieve_video(video_id: str, request: Request) -> JSONResponse:
    job = jobs_of(request).jobs.get(video_id)
    if job is None:
        raise HTTPException(404, "Video not found")
    if job["status"] == "failed":
        code = job_status_code(job)
        content = json.loads(json.dumps(job))
        if content.get("error") is not None:
            content["error"]["code"] = code
        return JSONResponse(content, status_code=code)
    return JSONResponse(job)


@router.delete("/v1/videos/{video_id}")
async def delete_video(video_id: str, request: Request) -> JSONResponse:
    jobs = jobs_of(request)
    job = jobs.jobs.get(video_id)
    if job is None:
        raise HTTPException(404, "Video not found")
    deleted = {"id": video_id, "deleted": True, "object": "video.deleted"}
    if job["status"] in ("queued", "in_progress"):
        task = jobs.tasks.get(video_id)
        if task is not None and not task.done():
            task.cancel()
            try:
                await asyncio.wait_for(task, timeout=6.0)
            except asyncio.TimeoutError as exc:
                raise HTTPException(409, "Cancellation in progress. Please try again later.") from exc
            except asyncio.CancelledError:
                pass
        jobs.pop(video_id)
        return JSONResponse(deleted)
    if job["status"] == "completed" and job["file_name"] is None:
        raise HTTPException(409, "Video output not yet available. Please try again later.")
    _storage_path(request, video_id).unlink(missing_ok=True)
    jobs.pop(video_id)
    return JSONResponse(deleted)


@router.get("/v1/videos/{video_id}/content")
async def download_video(video_id: str, request: Request) -> Response:
    job = jobs_of(request).jobs.get(video_id)
    if job is None:
        raise HTTPException(404, "Video not found")
    if job["status"] == "failed":
        raise HTTPException(422, "Video generation failed. Check job status for error details.")
    if not job["file_name"]:
        raise HTTPException(404, "Generation is still in-progress")
    path = _storage_path(request, video_id)
    if not storage.is_our_file(path):  # gone, or swapped for a symbolic link: never followed
        raise HTTPException(404, "Generated video file not found on disk")
    return FileResponse(path, media_type="video/mp4", filename=job["file_name"])
