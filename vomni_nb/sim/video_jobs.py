"""The ``/v1/videos`` job table: jobs in process memory (they vanish on restart, as on the real server),
in creation order, and their expiry after ``--video-ttl`` or beyond ``--max-stored-videos`` (files too).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import Request

from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.faults import sim_config
from vomni_nb.sim.limits import Limits
from vomni_nb.sim.video_form import VideoGenerationRequest

__all__ = ["VideoJobs", "new_job", "job_status_code", "jobs_of", "expire_periodically"]


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
    config = sim_config(request)
    jobs.expire(config.storage_dir, config.limits, time.time())
    return jobs


async def expire_periodically(app: Any) -> None:
    """Expire finished jobs even when nobody asks (files must not outlive --video-ttl by much)."""
    config: SimConfig = app.state.sim
    interval = min(60.0, max(0.5, config.limits.video_ttl / 4))
    while True:
        await asyncio.sleep(interval)
        _jobs_of_app(app).expire(config.storage_dir, config.limits, time.time())


