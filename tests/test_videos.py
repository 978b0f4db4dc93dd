"""The video twin from plain Python: a tiny clip from a real simulator, the job's state for the status line,
and bad arguments refused before any request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import vomni_nb
from tests.support.magics import generations
from vomni_nb.errors import InvalidRequestError
from vomni_nb.results import VideoResult
from vomni_nb.videos import describe_video, job_detail


def test_video_makes_saves_and_returns(video_server: Any, tmp_path: Path) -> None:
    clip = vomni_nb.video("a paper boat", server=video_server.url, size="64x64", frames=5, fps=4, seed=9, save=tmp_path)
    assert isinstance(clip, VideoResult) and clip.num_frames == 5 and clip.seed == 9
    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".json", ".mp4"]  # the MP4 and its recipe sidecar


def test_the_status_line_says_the_jobs_state() -> None:
    assert job_detail(None) == "creating the job"
    assert job_detail({"id": "video_gen_1", "status": "queued", "progress": 0}) == "queued, job video_gen_1"
    assert job_detail({"id": "v", "status": "in_progress", "progress": 40}) == "in progress 40%, job v"
    assert job_detail({"id": "v", "status": "in_progress", "progress": 0}) == "in progress, job v"
    assert describe_video({"size": "832x480", "seconds": 2}) == "a video 832x480, 2 s"
    assert describe_video({"num_frames": 9}) == "a video 9 frames"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"prompt": " "}, "prompt is empty"),
    ({"size": "wide"}, "size must look like"),
    ({"seconds": 0}, "seconds must be from 1"),
    ({"seconds": 1, "frames": 9}, "seconds or frames, not both"),
    ({"fps": 0}, "fps must be from 1"),
    ({"steps": 0}, "steps must be from 1"),
    ({"poll_interval": 0}, "poll_interval must be from"),
    ({"image": "nowhere.png"}, "no such file"),
    ({"image": 3.5}, "cannot use float as image input"),
])
def test_bad_arguments_fail_before_any_request(video_server: Any, kwargs: dict[str, Any], reason: str) -> None:
    before = generations(video_server)
    arguments = {"prompt": "a boat", **kwargs}
    with pytest.raises(InvalidRequestError, match=reason):
        vomni_nb.video(arguments.pop("prompt"), server=video_server.url, **arguments)
    assert generations(video_server) == before


def test_the_twin_is_exported_lazily() -> None:
    assert "video" in vomni_nb.__all__ and vomni_nb.video.__module__ == "vomni_nb.videos"
