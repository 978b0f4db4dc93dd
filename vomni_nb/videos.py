"""The video twin: ``vomni_nb.video``, the plain function behind ``%%omni_video``.

A video is a job on the server (create, poll, download). The twin checks every argument before anything
is sent, finds the server whose model makes videos, and waits with a live status line that says the job's
state, its progress and the time so far (from the client's ``on_progress`` callback); Ctrl-C cancels the
job on the server (DELETE), so no GPU work is left behind, while a timeout only stops the waiting (the
job goes on, and ``OmniClient.wait_video(job_id)`` picks it up). The result (a VideoResult: the MP4 and the
final job record) is saved into ``save`` (never overwriting) and returned, not displayed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vomni_nb._sources import check_source, fetch_source
from vomni_nb._twins import Log, Status, call, either_spelling, resolve_target, save_result
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.validate import check_float, check_int, check_prompt, check_seed, format_size

if TYPE_CHECKING:
    from vomni_nb._files import PathLike
    from vomni_nb.results import VideoResult

__all__ = ["video", "check_video_options", "describe_video", "job_detail"]


def check_video_options(*, size: Any = None, seconds: Any = None, fps: Any = None, frames: Any = None,
                        steps: Any = None, guidance: Any = None, seed: Any = None) -> dict[str, Any]:
    """The clip's settings checked (InvalidRequestError with the reason), as ``OmniClient.video`` takes them."""
    if seconds is not None and frames is not None:
        raise InvalidRequestError("Give seconds or frames, not both (frames = seconds x fps).")
    options: dict[str, Any] = {
        "size": format_size(size) if size is not None else None,
        "seconds": check_int("seconds", seconds, 1, 600) if seconds is not None else None,
        "fps": check_float("fps", fps, 1, 240) if fps is not None else None,
        "num_frames": check_int("frames", frames, 1, 10_000) if frames is not None else None,
        "steps": check_int("steps", steps, 1, 200) if steps is not None else None,
        "guidance": check_float("guidance", guidance, 0.0, 20.0) if guidance is not None else None,
        "seed": check_seed(seed) if seed is not None else None,
    }
    return {key: value for key, value in options.items() if value is not None}


def describe_video(options: Mapping[str, Any]) -> str:
    """What a status line says is being made: ``a video 480x272, 2 s``."""
    parts = [options["size"]] if options.get("size") else []
    if options.get("seconds"):
        parts.append(f"{options['seconds']} s")
    elif options.get("num_frames"):
        parts.append(f"{options['num_frames']} frames")
    return "a video" + (f" {', '.join(parts)}" if parts else "")


def job_detail(job: Mapping[str, Any] | None) -> str:
    """The job's state for the status line: ``queued``, ``in progress 40%`` (pure, from the job record)."""
    if not job:
        return "creating the job"
    state = str(job.get("status") or "unknown").replace("_", " ")
    progress = job.get("progress")
    shown = f" {progress}%" if isinstance(progress, (int, float)) and state == "in progress" and progress > 0 else ""
    return f"{state}{shown}, job {job.get('id', '?')}"


def video(
    prompt: str,
    *,
    model: str | None = None,
    server: Any = None,
    size: str | tuple[int, int] | None = None,
    seconds: int | None = None,
    fps: float | None = None,
    frames: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    negative: str | None = None,
    seed: int | None = None,
    image: Any = None,
    num_frames: int | None = None,
    poll_interval: float = 0.5,
    job_timeout: float | None = 1800.0,
    save: PathLike | None = None,
    log: Log = True,
    extra: Mapping[str, Any] | None = None,
    status: Status = None,
) -> VideoResult:
    """Text (or a first frame, ``image``) to video on the right server: a VideoResult (the MP4 and its job).

    ``model`` / ``server`` (a Server, a name from ``%omni_server list``, or a URL) pick the server; without
    them it is the one whose model makes videos. ``size`` "WIDTHxHEIGHT" (the model rounds it to its grid);
    ``seconds`` or ``frames``; ``fps``; ``steps`` 1-200; ``guidance`` 0-20; ``negative`` what to avoid;
    ``seed`` (chosen and recorded when not given); ``image`` a first frame (a path, a URL, a result, bytes
    or a history id). The job is polled every ``poll_interval`` seconds. After ``job_timeout`` seconds the
    twin stops waiting but the job goes on: the :class:`~vomni_nb.errors.JobTimeoutError` names
    ``wait_video(job_id)`` (on ``OmniClient``) to pick it up. Ctrl-C cancels the job on the server
    (DELETE). ``save``: a folder for the MP4 (never overwriting);
    ``log=False`` keeps it out of the history (``log=`` a store or path records there); ``extra`` adds wire fields; ``status`` the live status line
    (``False``: none). Every argument is checked before anything is sent.

    ``vomni_nb.video(**result.recipe)`` makes the same clip again (a recipe does not hold the first frame:
    pass ``image=`` again): a recipe uses the client's names, so ``num_frames`` is taken as another name
    for ``frames`` (not both).
    """
    check_prompt(prompt)
    options = check_video_options(size=size, seconds=seconds, fps=fps, steps=steps, guidance=guidance, seed=seed,
                                  frames=either_spelling("frames", frames, "num_frames", num_frames))
    check_float("poll_interval", poll_interval, 0.05, 60.0)
    if job_timeout is not None:
        check_float("job_timeout", job_timeout, 1.0, 7 * 24 * 3600.0)
    source = check_source(image, kind="image", name="image") if image is not None else None
    if negative is not None:
        options["negative"] = negative
    if extra:
        options["extra"] = dict(extra)
    target = resolve_target("video", model=model, server=server)
    if source is not None:
        options["image"] = fetch_source(source, kind="image")
    latest: list[Mapping[str, Any]] = []  # the last job record the client polled (written on the loop's thread)

    def progress(job: Mapping[str, Any]) -> None:
        latest[:] = [dict(job)]

    result: VideoResult = call(
        "video", target,
        lambda client: client.video(prompt, poll_interval=poll_interval, timeout=job_timeout, on_progress=progress,
                                    **options),
        what=describe_video(options), status=status, log=log, detail=lambda: job_detail(latest[0] if latest else None))
    save_result(result, save)
    return result
