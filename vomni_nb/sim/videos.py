"""``/v1/videos``: async jobs, listing, download, delete and the blocking ``/sync`` route (reference §3.12).

Jobs live in process memory (they vanish on restart, as on the real server); files go to
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
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints, ValidationError, field_validator

from PIL import Image

from vomni_nb.sim import faults, storage, video, vlog, wan
from vomni_nb.sim.media import FAIL_TOKEN
from vomni_nb.sim.video_refs import start_picture
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.families import Family
from vomni_nb.sim.limits import Limits

__all__ = ["router", "VideoGenerationRequest", "FAIL_TOKEN", "job_status_code", "check_video_limits",
           "expire_periodically"]

router = APIRouter()

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DEFAULT_FPS = 24
# Simulated compute: seconds per rendered pixel-frame (49 frames of 480x272 ≈ 0.3 s), capped.
SIM_SECONDS_PER_PIXEL_FRAME = 5e-8
SIM_MAX_SECONDS = 8.0
QUALITY_LEVELS = ("lossless", "high")
SizeStr = Annotated[str, StringConstraints(pattern=r"^\d+x\d+$")]
SecondStr = Annotated[str, StringConstraints(pattern=r"^[1-9]\d*$")]


class VideoGenerationRequest(BaseModel):
    """The parts of vLLM-Omni's model the sim uses; same name, so pydantic's messages match."""

    model: str | None = None
    prompt: str
    seconds: SecondStr | None = None
    size: SizeStr | None = None
    image_reference: dict[str, Any] | list[dict[str, Any]] | None = None
    video_reference: dict[str, Any] | list[dict[str, Any]] | None = None
    audio_reference: dict[str, Any] | list[dict[str, Any]] | None = None
    user: str | None = None
    width: int | None = Field(default=None, ge=1, le=INT64_MAX)
    height: int | None = Field(default=None, ge=1, le=INT64_MAX)
    fps: float | None = Field(default=None, ge=1, le=INT64_MAX, allow_inf_nan=False)
    num_frames: int | None = Field(default=None, ge=1, le=INT64_MAX)
    aspect_ratio: str | None = None
    short_edge: int | None = Field(default=None, ge=1, le=INT64_MAX)
    num_outputs_per_prompt: int = Field(default=1, ge=1, le=10)
    start_time_seconds: float | None = Field(default=None, ge=0.0)
    quality: str | None = None
    negative_prompt: str | None = None
    num_inference_steps: int | None = Field(default=None, ge=1, le=200)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    guidance_scale_2: float | None = Field(default=None, ge=0.0, le=20.0)
    boundary_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    flow_shift: float | None = None
    true_cfg_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    generate_sound: bool = False
    sound_duration: float | None = Field(default=None, gt=0.0)
    enable_frame_interpolation: bool = False
    frame_interpolation_exp: int = Field(default=1, ge=1, le=INT64_MAX)
    frame_interpolation_scale: float = Field(default=1.0, gt=0.0)
    frame_interpolation_model_path: str | None = None
    lora: dict[str, Any] | None = None
    extra_params: dict[str, Any] | None = None
    return_stage_metrics: bool | None = None

    @field_validator("quality")
    @classmethod
    def _quality(cls, value: str | None) -> str | None:
        if value is not None and value not in QUALITY_LEVELS:
            raise ValueError(f"quality must be one of {list(QUALITY_LEVELS)}, got {value!r}")
        return value

    def resolved(self) -> tuple[int | None, int | None, float, int | None]:
        """(width, height, fps, num_frames) as the real ``resolve_video_params`` does it."""
        width, height = self.width, self.height
        if self.size:
            width, height = (int(part) for part in self.size.split("x"))
        fps = float(self.fps if self.fps is not None else DEFAULT_FPS)
        frames = self.num_frames
        if frames is None and self.seconds is not None:
            frames = int(float(self.seconds) * fps)
        return width, height, fps, frames


def new_job(model: str, req: VideoGenerationRequest) -> dict[str, Any]:
    """A ``VideoResponse`` as JSON, keys in the model's field order."""
    _, _, fps, frames = req.resolved()
    duration = float(req.seconds) if req.seconds is not None else (frames / fps if frames is not None else None)
    return {
        "model": model, "prompt": req.prompt, "id": f"video_gen_{uuid.uuid4().hex}", "object": "video",
        "status": "queued", "size": req.size, "progress": 0, "seconds": req.seconds or "4",
        "quality": req.quality or "default", "completed_at": None, "created_at": int(time.time()),
        "remixed_from_video_id": None, "error": None, "media_type": "video/mp4", "expires_at": None,
        "file_name": None, "inference_time_s": None, "fps": fps, "num_frames": frames, "duration_s": duration,
        "metrics": None, "stage_durations": {}, "peak_memory_mb": 0.0, "action": None,
    }


def job_status_code(job: dict[str, Any]) -> int:
    code = (job.get("error") or {}).get("code")
    return code if isinstance(code, int) and 400 <= code < 600 else 500


class VideoJobs:
    """The in-memory job table and its background tasks (one per app)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.sequence = 0  # creation order for jobs made within the same second
        self.order: dict[str, int] = {}
        self.finished: dict[str, float] = {}  # video id -> when it finished (time.time()), oldest first

    def add(self, job: dict[str, Any]) -> None:
        self.sequence += 1
        self.order[job["id"]] = self.sequence
        self.jobs[job["id"]] = job

    def pop(self, video_id: str) -> None:
        self.jobs.pop(video_id, None)
        self.tasks.pop(video_id, None)
        self.finished.pop(video_id, None)
        self.order.pop(video_id, None)

    def unfinished(self) -> int:
        return sum(1 for job in self.jobs.values() if job["status"] in ("queued", "in_progress"))

    def expire(self, directory: Path | None, limits: Limits, now: float) -> None:
        """Forget finished jobs past --video-ttl, and the oldest beyond --max-stored-videos; delete their files."""
        expired = [vid for vid, at in self.finished.items() if now - at >= limits.video_ttl]
        surplus = len(self.finished) - len(expired) - limits.max_stored_videos
        if surplus > 0:
            expired += [vid for vid in self.finished if vid not in expired][:surplus]
        for video_id in expired:
            if directory is not None:
                (Path(directory) / f"{video_id}.mp4").unlink(missing_ok=True)
            self.pop(video_id)


def _jobs_of_app(app: Any) -> VideoJobs:
    jobs = getattr(app.state, "sim_videos", None)
    if jobs is None:
        jobs = VideoJobs()
        app.state.sim_videos = jobs
    return jobs


def jobs_of(request: Request) -> VideoJobs:
    """The job table, with expired jobs already gone."""
    jobs = _jobs_of_app(request.app)
    config = _sim_config(request)
    jobs.expire(config.storage_dir, config.limits, time.time())
    return jobs


async def expire_periodically(app: Any) -> None:
    """Expire finished jobs even when nobody asks (files must not outlive --video-ttl by much)."""
    config: SimConfig = app.state.sim
    interval = min(60.0, max(0.5, config.limits.video_ttl / 4))
    while True:
        await asyncio.sleep(interval)
        _jobs_of_app(app).expire(config.storage_dir, config.limits, time.time())


HUGE = 10**10  # stands for a digit string too long to convert: larger than any limit


def _dimension(text: str) -> int:
    """An int from a digit string; ``int()`` of 5,000 digits raises, and nothing that long fits a limit."""
    return int(text) if len(text) <= 9 else HUGE


def check_video_limits(req: VideoGenerationRequest, limits: Limits) -> None:
    """400 before anything is queued: each side, pixels per frame, and pixels x frames (no float overflow)."""
    if req.size:
        width, height = (_dimension(part) for part in req.size.split("x"))
    elif req.width is not None and req.height is not None:
        width, height = req.width, req.height
    else:
        width, height = wan.DEFAULT_SIZE  # what generate() renders when the size is incomplete
    shown = f"{min(width, HUGE)}x{min(height, HUGE)}"
    if width > limits.max_side or height > limits.max_side:
        raise HTTPException(400, f"Video size {shown} is larger than vomni-sim renders: at most {limits.max_side} "
                                 "pixels on a side (--max-side).")
    if width * height > limits.max_video_pixels:
        raise HTTPException(400, f"Video size {shown} has {width * height} pixels per frame; vomni-sim renders at "
                                 f"most {limits.max_video_pixels} (--max-video-pixels).")
    fps = float(req.fps if req.fps is not None else DEFAULT_FPS)
    if req.num_frames is not None:
        frames = float(req.num_frames)
    elif req.seconds is not None:
        frames = _dimension(req.seconds) * fps
    else:
        frames = float(wan.DEFAULT_FRAMES)
    if width * height * frames > limits.max_video_pixel_frames:
        most = max(1, limits.max_video_pixel_frames // (width * height))
        count = f"{frames:.0f}" if frames < HUGE else "more than 10^10"
        raise HTTPException(400, f"A {shown} clip of {count} frames is more than vomni-sim renders: at most "
                                 f"{most} frames at that size (--max-video-pixel-frames).")


def _sim_config(request: Request) -> SimConfig:
    config: SimConfig = request.app.state.sim
    return config


def _parse_form_json(value: str | None, expected: type | None = None) -> Any:
    if value is None or value == "":
        return None
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError) as exc:  # deep nesting exhausts the parser's stack
        raise HTTPException(400, "Invalid JSON in form field.") from exc
    if expected is not None and not isinstance(parsed, expected):
        raise HTTPException(
            400, f"Invalid JSON in form field: expected {expected.__name__}, got {type(parsed).__name__}."
        )
    return parsed


class VideoRequest(NamedTuple):
    """A parsed video request: the model's fields, the served model name, the picture to start from."""

    req: VideoGenerationRequest
    model: str
    picture: Image.Image | None


async def parse_video_form(
    request: Request,
    prompt: str = Form(...),
    input_reference: UploadFile | None = File(default=None),
    input_references: list[UploadFile] | None = File(default=None),
    control_reference: UploadFile | None = File(default=None),
    control_type: str | None = Form(default=None),
    image_reference: str | None = Form(default=None),
    video_reference: str | None = Form(default=None),
    audio_reference: str | None = Form(default=None),
    model: str | None = Form(default=None),
    seconds: SecondStr | None = Form(default=None),
    size: SizeStr | None = Form(default=None),
    user: str | None = Form(default=None),
    width: int | None = Form(default=None),
    height: int | None = Form(default=None),
    num_frames: int | None = Form(default=None),
    fps: float | None = Form(default=None, ge=1, allow_inf_nan=False),
    aspect_ratio: str | None = Form(default=None),
    short_edge: int | None = Form(default=None, ge=1),
    num_outputs_per_prompt: int = Form(default=1, ge=1, le=10),
    start_time_seconds: float | None = Form(default=None, ge=0.0),
    quality: str | None = Form(default=None),
    num_inference_steps: int | None = Form(default=None),
    guidance_scale: float | None = Form(default=None),
    guidance_scale_2: float | None = Form(default=None),
    boundary_ratio: float | None = Form(default=None),
    flow_shift: float | None = Form(default=None),
    true_cfg_scale: float | None = Form(default=None),
    seed: int | None = Form(default=None),
    generate_sound: bool | None = Form(default=None),
    sound_duration: float | None = Form(default=None, gt=0.0),
    negative_prompt: str | None = Form(default=None),
    enable_frame_interpolation: bool | None = Form(default=None),
    frame_interpolation_exp: int | None = Form(default=None, ge=1),
    frame_interpolation_scale: float | None = Form(default=None, gt=0.0),
    frame_interpolation_model_path: str | None = Form(default=None),
    lora: str | None = Form(default=None),
    extra_params: str | None = Form(default=None),
    return_stage_metrics: bool | None = Form(default=None),
    source_video: UploadFile | None = File(default=None),
    source_audio: UploadFile | None = File(default=None),
    video_noise_mask: UploadFile | None = File(default=None),
    audio_noise_mask: UploadFile | None = File(default=None),
) -> VideoRequest | JSONResponse:
    """The real ``_parse_video_form``: form layer, JSON fields, the request model, the model-name check,
    then the reference picture."""
    parsed_image = _parse_form_json(image_reference)
    parsed_video = _parse_form_json(video_reference)
    parsed_audio = _parse_form_json(audio_reference)
    if input_references and any(item is not None for item in (parsed_image, parsed_video, input_reference)):
        raise HTTPException(
            400, "Provide input_references alone, without input_reference, image_reference, or video_reference."
        )
    if input_reference is not None and (parsed_image is not None or parsed_video is not None):
        raise HTTPException(
            400,
            "Provide only one of input_reference, image_reference, or video_reference when using "
            "input_reference; image_reference and video_reference may be combined.",
        )
    fields: dict[str, Any] = {
        "prompt": prompt, "model": model, "seconds": seconds, "size": size, "image_reference": parsed_image,
        "video_reference": parsed_video, "audio_reference": parsed_audio, "user": user, "width": width,
        "height": height, "num_frames": num_frames, "fps": fps, "aspect_ratio": aspect_ratio,
        "short_edge": short_edge, "num_outputs_per_prompt": num_outputs_per_prompt,
        "start_time_seconds": start_time_seconds, "quality": quality, "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale, "guidance_scale_2": guidance_scale_2, "boundary_ratio": boundary_ratio,
        "flow_shift": flow_shift, "true_cfg_scale": true_cfg_scale, "seed": seed, "generate_sound": generate_sound,
        "sound_duration": sound_duration, "negative_prompt": negative_prompt,
        "enable_frame_interpolation": enable_frame_interpolation, "frame_interpolation_exp": frame_interpolation_exp,
        "frame_interpolation_scale": frame_interpolation_scale,
        "frame_interpolation_model_path": frame_interpolation_model_path,
        "lora": _parse_form_json(lora, dict), "extra_params": _parse_form_json(extra_params, dict),
        "return_stage_metrics": return_stage_metrics,
    }
    try:
        req = VideoGenerationRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        # pydantic's own multi-line message, as a BadRequestError (reference §1, last exception).
        body = {"error": {"message": str(exc), "type": "BadRequestError", "param": None, "code": 400}}
        return JSONResponse(body, status_code=400)
    config = _sim_config(request)
    if config.family in (Family.OMNI, Family.TTS):
        raise HTTPException(503, "Video generation handler not initialized.")
    if req.model is not None and req.model != config.served_model_name:
        raise HTTPException(
            400, f"Model mismatch: request specifies '{req.model}' but server is running '{config.served_model_name}'."
        )
    check_video_limits(req, config.limits)
    picture = await start_picture(input_reference, parsed_image)
    return VideoRequest(req, config.served_model_name, picture)


VideoForm = Annotated[VideoRequest | JSONResponse, Depends(parse_video_form)]


class GenerationFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def generate(request: Request, form: VideoRequest, video_id: str) -> tuple[bytes, wan.Geometry]:
    """Render the clip, then wait out a simulated compute time; raises GenerationFailed."""
    config = _sim_config(request)
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
    directory = _sim_config(request).storage_dir
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
            expires_at=int(finished + _sim_config(request).limits.video_ttl),
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
    limit = _sim_config(request).limits.max_video_jobs
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
