"""/v1/videos jobs, listing, download, delete and /sync against real vomni-sim processes (reference §3.12)."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import av
import httpx
import pytest
from PIL import Image

from tests.support.sims import VIDEO_MODEL, SimHandle, launch_sim

VIDEOS = "/v1/videos"
JOB_KEYS = [
    "model", "prompt", "id", "object", "status", "size", "progress", "seconds", "quality", "completed_at",
    "created_at", "remixed_from_video_id", "error", "media_type", "expires_at", "file_name", "inference_time_s",
    "fps", "num_frames", "duration_s", "metrics", "stage_durations", "peak_memory_mb", "action",
]
SMALL = {"size": "64x48", "num_frames": "4", "seed": "1"}


def create(url: str, prompt: str = "a paper boat on a pond", **fields: str) -> dict[str, Any]:
    response = httpx.post(url + VIDEOS, data={"prompt": prompt, **fields}, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for(url: str, video_id: str, statuses: tuple[str, ...], timeout: float = 20.0) -> list[str]:
    """Poll until the job reaches one of ``statuses``; return every status seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}{VIDEOS}/{video_id}").json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in statuses:
            return seen
        time.sleep(0.01)
    raise AssertionError(f"job {video_id} stuck; saw {seen}")


def frames_of(data: bytes) -> tuple[int, int, int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, stream.codec_context.width, stream.codec_context.height, float(stream.average_rate)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert list(body) == ["error"] and body["error"]["code"] == response.status_code
    return dict(body["error"])


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    """A video server of our own: the list and delete tests need to know every job in it.

    Its --latency keeps each job visibly queued for a moment before it runs.
    """
    handle = launch_sim(VIDEO_MODEL, "--latency", "0.4", log_dir=tmp_path_factory.mktemp("fresh-video"))
    yield handle
    handle.stop()


def test_job_walks_from_queued_to_completed(video_server: SimHandle) -> None:
    job = create(video_server.url, size="320x256", num_frames="97", fps="16", seed="5")
    assert list(job) == JOB_KEYS
    assert re.fullmatch(r"video_gen_[0-9a-f]{32}", job["id"])
    assert (job["status"], job["progress"], job["object"], job["media_type"]) == ("queued", 0, "video", "video/mp4")
    assert (job["model"], job["size"], job["seconds"], job["quality"]) == (VIDEO_MODEL, "320x256", "4", "default")
    assert (job["fps"], job["num_frames"], job["duration_s"]) == (16.0, 97, 97 / 16)
    assert (job["stage_durations"], job["peak_memory_mb"], job["file_name"], job["completed_at"]) == ({}, 0.0, None, None)

    early = httpx.get(f"{video_server.url}{VIDEOS}/{job['id']}/content")
    assert early.status_code == 404
    assert error_of(early) == {"message": "Generation is still in-progress", "type": "Not Found", "param": None, "code": 404}

    seen = wait_for(video_server.url, job["id"], ("completed", "failed"))
    assert seen[-2:] == ["in_progress", "completed"]
    done = httpx.get(f"{video_server.url}{VIDEOS}/{job['id']}").json()
    assert list(done) == JOB_KEYS
    assert (done["progress"], done["file_name"]) == (100, f"{job['id']}.mp4")
    assert done["completed_at"] >= done["created_at"] and done["inference_time_s"] > 0

    content = httpx.get(f"{video_server.url}{VIDEOS}/{job['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"] == "video/mp4"
    assert content.headers["content-disposition"] == f'attachment; filename="{job["id"]}.mp4"'
    assert frames_of(content.content) == (97, 320, 256, 16.0)


def test_a_finished_job_reports_the_frames_the_pipeline_made(video_server: SimHandle) -> None:
    # Issue 13 item 2: Wan makes 4k+1 frames, so one second at 8 fps is 9 frames, and the record says so.
    job = create(video_server.url, seconds="1", fps="8", size="64x64", quality="high")
    assert (job["seconds"], job["num_frames"], job["duration_s"], job["quality"]) == ("1", 8, 1.0, "high")
    wait_for(video_server.url, job["id"], ("completed",))
    done = httpx.get(f"{video_server.url}{VIDEOS}/{job['id']}").json()
    assert (done["seconds"], done["fps"], done["num_frames"], done["duration_s"]) == ("1", 8.0, 9, 9 / 8)
    assert frames_of(httpx.get(f"{video_server.url}{VIDEOS}/{job['id']}/content").content) == (9, 64, 64, 8.0)


def test_nothing_set_is_wans_default_clip(video_server: SimHandle) -> None:
    bare = create(video_server.url, prompt="defaults")
    assert (bare["size"], bare["seconds"], bare["fps"], bare["num_frames"], bare["duration_s"]) == (None, "4", 24.0, None, None)
    wait_for(video_server.url, bare["id"], ("completed",))
    filled = httpx.get(f"{video_server.url}{VIDEOS}/{bare['id']}").json()
    assert (filled["num_frames"], filled["duration_s"]) == (81, 81 / 24)
    assert frames_of(httpx.get(f"{video_server.url}{VIDEOS}/{bare['id']}/content").content) == (81, 832, 480, 24.0)


def test_failed_job_answers_with_its_error_code(video_server: SimHandle) -> None:
    job = create(video_server.url, prompt="this one breaks [[fail]]", **SMALL)
    wait_for(video_server.url, job["id"], ("failed",))
    got = httpx.get(f"{video_server.url}{VIDEOS}/{job['id']}")
    assert got.status_code == 500
    body = got.json()
    assert list(body) == JOB_KEYS and body["status"] == "failed" and body["progress"] == 0
    assert body["error"] == {"code": 500, "message": "Simulated generation failure ([[fail]] in the prompt)."}
    content = httpx.get(f"{video_server.url}{VIDEOS}/{job['id']}/content")
    assert content.status_code == 422
    assert error_of(content)["message"] == "Video generation failed. Check job status for error details."
    deleted = httpx.delete(f"{video_server.url}{VIDEOS}/{job['id']}")
    assert deleted.json() == {"id": job["id"], "deleted": True, "object": "video.deleted"}


def test_delete_cancels_a_running_job(fresh: SimHandle) -> None:
    job = create(fresh.url, prompt="a long one", size="640x480", num_frames="300", seed="2")
    wait_for(fresh.url, job["id"], ("in_progress",))
    deleted = httpx.delete(f"{fresh.url}{VIDEOS}/{job['id']}", timeout=30)
    assert deleted.status_code == 200
    assert deleted.json() == {"id": job["id"], "deleted": True, "object": "video.deleted"}
    gone = httpx.get(f"{fresh.url}{VIDEOS}/{job['id']}")
    assert gone.status_code == 404 and error_of(gone)["message"] == "Video not found"
    fresh.wait_for_log(f"[AsyncOmni] Request {job['id']} aborted.")
    assert job["id"] not in [j["id"] for j in httpx.get(fresh.url + VIDEOS).json()["data"]]


def test_delete_completed_removes_the_file(fresh: SimHandle) -> None:
    job = create(fresh.url, **SMALL)
    wait_for(fresh.url, job["id"], ("completed",))
    assert httpx.delete(f"{fresh.url}{VIDEOS}/{job['id']}").status_code == 200
    for response in (httpx.get(f"{fresh.url}{VIDEOS}/{job['id']}/content"), httpx.delete(f"{fresh.url}{VIDEOS}/{job['id']}")):
        assert response.status_code == 404 and error_of(response)["type"] == "Not Found"


def test_list_pages_in_both_orders(fresh: SimHandle) -> None:
    for job in httpx.get(fresh.url + VIDEOS).json()["data"]:
        httpx.delete(f"{fresh.url}{VIDEOS}/{job['id']}")
    ids = [create(fresh.url, prompt=f"clip {i}", **SMALL)["id"] for i in range(3)]
    newest_first = httpx.get(fresh.url + VIDEOS).json()
    assert list(newest_first) == ["first_id", "last_id", "has_more", "data", "object"]
    assert [j["id"] for j in newest_first["data"]] == ids[::-1]
    assert (newest_first["first_id"], newest_first["last_id"], newest_first["has_more"]) == (ids[2], ids[0], False)
    assert all(list(j) == JOB_KEYS for j in newest_first["data"])
    page = httpx.get(fresh.url + VIDEOS, params={"order": "asc", "limit": 2}).json()
    assert ([j["id"] for j in page["data"]], page["has_more"]) == (ids[:2], True)
    rest = httpx.get(fresh.url + VIDEOS, params={"order": "asc", "after": page["last_id"]}).json()
    assert [j["id"] for j in rest["data"]] == ids[2:]
    assert httpx.get(fresh.url + VIDEOS, params={"after": "video_gen_nope"}).json() == {
        "first_id": None, "last_id": None, "has_more": False, "data": [], "object": "list"}
    assert httpx.get(fresh.url + VIDEOS, params={"limit": 0}).json()["has_more"] is True


@pytest.mark.parametrize(
    ("params", "param"), [({"limit": 101}, "query.limit"), ({"limit": -1}, "query.limit"), ({"order": "up"}, "query.order")]
)
def test_list_query_validation(video_server: SimHandle, params: dict[str, Any], param: str) -> None:
    response = httpx.get(video_server.url + VIDEOS, params=params)
    assert response.status_code == 400 and error_of(response)["param"] == param


def test_unknown_job_is_404(video_server: SimHandle) -> None:
    for method, suffix in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        response = httpx.request(method, f"{video_server.url}{VIDEOS}/video_gen_unknown{suffix}")
        assert response.status_code == 404
        assert error_of(response) == {"message": "Video not found", "type": "Not Found", "param": None, "code": 404}


@pytest.mark.parametrize(
    ("fields", "start"),
    [
        ({"num_inference_steps": "500"}, "1 validation error for VideoGenerationRequest\nnum_inference_steps\n"
                                         "  Input should be less than or equal to 200"),
        ({"quality": "ultra"}, "1 validation error for VideoGenerationRequest\nquality\n"
                               "  Value error, quality must be one of ['lossless', 'high'], got 'ultra'"),
        ({"guidance_scale": "25"}, "1 validation error for VideoGenerationRequest\nguidance_scale\n"),
        ({"boundary_ratio": "2"}, "1 validation error for VideoGenerationRequest\nboundary_ratio\n"),
        ({"width": "0"}, "1 validation error for VideoGenerationRequest\nwidth\n"),
    ],
)
def test_request_model_errors_are_bad_request_errors(video_server: SimHandle, fields: dict[str, str], start: str) -> None:
    response = httpx.post(video_server.url + VIDEOS, data={"prompt": "x", **fields})
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "BadRequestError" and error["param"] is None
    assert error["message"].startswith(start)


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"fps": "0"}, "body.fps"), ({"size": "big"}, "body.size"), ({"seconds": "0"}, "body.seconds"),
     ({"num_outputs_per_prompt": "11"}, "body.num_outputs_per_prompt"), ({"seed": "abc"}, "body.seed")],
)
def test_form_errors_are_validation_errors(video_server: SimHandle, fields: dict[str, str], param: str) -> None:
    response = httpx.post(video_server.url + VIDEOS, data={"prompt": "x", **fields})
    assert response.status_code == 400
    error = error_of(response)
    assert (error["type"], error["param"]) == ("Bad Request", param)
    assert error["message"].startswith("1 validation error:\n  {")


def test_missing_prompt(video_server: SimHandle) -> None:
    response = httpx.post(video_server.url + VIDEOS, data={"size": "64x48"})
    assert response.status_code == 400 and error_of(response)["param"] == "body.prompt"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lora": "{broken"}, "Invalid JSON in form field."),
        ({"extra_params": "[1, 2]"}, "Invalid JSON in form field: expected dict, got list."),
        ({"image_reference": "nope"}, "Invalid JSON in form field."),
        ({"model": "Wan-AI/Other"}, f"Model mismatch: request specifies 'Wan-AI/Other' but server is running '{VIDEO_MODEL}'."),
    ],
)
def test_route_errors(video_server: SimHandle, fields: dict[str, str], message: str) -> None:
    response = httpx.post(video_server.url + VIDEOS, data={"prompt": "x", **fields})
    assert response.status_code == 400
    assert error_of(response) == {"message": message, "type": "Bad Request", "param": None, "code": 400}


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_image_to_video_takes_its_size_from_the_picture(video_server: SimHandle) -> None:
    # Issue 13 item 3: the picture's aspect ratio at the 720p area, floored to 16 and then to TI2V's 32; 81 frames.
    still = {"input_reference": ("still.png", png(1920, 1080), "image/png")}
    clip = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "from a still", "fps": "24"}, files=still,
                      timeout=60)
    assert clip.status_code == 200, clip.text
    assert frames_of(clip.content) == (81, 1280, 704, 24.0)
    portrait = f"data:image/png;base64,{base64.b64encode(png(480, 640)).decode()}"
    sized = httpx.post(video_server.url + VIDEOS + "/sync", timeout=60, data={
        "prompt": "from a data URL", "num_frames": "5", "image_reference": json.dumps({"image_url": portrait})})
    assert frames_of(sized.content)[:3] == (5, 800, 1088)  # 3:4 at the 720p area: 816x1104 (to 16), then to 32
    told = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "x", "size": "64x64", "num_frames": "5"},
                      files=still, timeout=60)
    assert frames_of(told.content)[:3] == (5, 64, 64)  # a size that is given wins


def test_reference_files_must_be_pictures_or_clips(video_server: SimHandle) -> None:
    fake = httpx.post(video_server.url + VIDEOS, data={"prompt": "from a still", **SMALL},
                      files={"input_reference": ("still.png", b"\x89PNG fake", "image/png")})
    assert error_of(fake) == {"message": "Invalid input_reference: provided content is not a valid image or video.",
                              "type": "Bad Request", "param": None, "code": 400}
    clip = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "x", **SMALL}).content
    from_clip = httpx.post(video_server.url + VIDEOS, data={"prompt": "from a clip", **SMALL},
                           files={"input_reference": ("clip.mp4", clip, "video/mp4")})
    assert from_clip.status_code == 200
    for url, message in [("data:image/png;base64,", "image data is empty."),
                         ("data:image/png;base64,bm90IGFuIGltYWdl", "provided content is not a valid image."),
                         ("ftp://host/x.png", "must be an http(s) URL or data URL.")]:
        bad = httpx.post(video_server.url + VIDEOS, data={"prompt": "x", "image_reference": json.dumps({"image_url": url})})
        assert error_of(bad)["message"] == f"Invalid image_reference.image_url: {message}"
    clash = httpx.post(video_server.url + VIDEOS, data={"prompt": "x", "image_reference": '{"image_url": "data:,"}'},
                       files={"input_reference": ("still.png", b"x", "image/png")})
    assert clash.status_code == 400 and error_of(clash)["message"].startswith("Provide only one of input_reference")


def test_sync_returns_the_mp4_with_metadata_headers(video_server: SimHandle) -> None:
    response = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "right now", "size": "96x64",
                                                                     "num_frames": "6", "fps": "12"}, timeout=60)
    assert response.status_code == 200
    h = response.headers
    assert h["content-type"] == "video/mp4"
    assert re.fullmatch(r"video_sync-[0-9a-f]{32}", h["x-request-id"])
    assert h["x-model"] == VIDEO_MODEL and h["x-stage-durations"] == "{}" and h["x-peak-memory-mb"] == "0.000"
    assert re.fullmatch(r"\d+\.\d{3}", h["x-inference-time-s"])
    assert frames_of(response.content) == (5, 96, 64, 12.0)  # 6 frames asked; Wan makes 4k+1
    again = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "right now", "size": "96x64",
                                                                  "num_frames": "6", "fps": "12", "seed": "9"})
    assert again.content == httpx.post(video_server.url + VIDEOS + "/sync", data={
        "prompt": "right now", "size": "96x64", "num_frames": "6", "fps": "12", "seed": "9"}).content


def test_sync_validation_and_floored_sizes(video_server: SimHandle) -> None:
    steps = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "x", "num_inference_steps": "0"})
    assert steps.status_code == 400 and error_of(steps)["type"] == "BadRequestError"
    odd = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "x", "size": "95x48", "num_frames": "2"})
    assert frames_of(odd.content)[:3] == (1, 64, 32)  # TI2V floors both sides to 32; 2 frames become 1
    tiny = httpx.post(video_server.url + VIDEOS + "/sync", data={"prompt": "x", "size": "16x16", "num_frames": "2"})
    assert tiny.status_code == 400 and "positive" in error_of(tiny)["message"]  # floored to nothing


def test_videos_need_a_diffusion_model(tts_server: SimHandle) -> None:
    response = httpx.post(tts_server.url + VIDEOS, data={"prompt": "x"})
    assert response.status_code == 503
    assert error_of(response)["message"] == "Video generation handler not initialized."


def test_overload_faults_fail_jobs_and_sync(start_sim: Any) -> None:
    server = start_sim(VIDEO_MODEL, "--rate-503", "1.0", "--retry-after", "2")
    sync = httpx.post(server.url + VIDEOS + "/sync", data={"prompt": "x", **SMALL})
    assert sync.status_code == 503 and sync.headers["retry-after"] == "2"
    job = create(server.url, **SMALL)
    wait_for(server.url, job["id"], ("failed",))
    got = httpx.get(f"{server.url}{VIDEOS}/{job['id']}")
    assert got.status_code == 503 and got.json()["error"]["code"] == 503


def test_missing_file_on_disk_is_404(fresh: SimHandle) -> None:
    job = create(fresh.url, **SMALL)
    wait_for(fresh.url, job["id"], ("completed",))
    stored = fresh.log_path.parent / f"storage-{fresh.port}" / f"{job['id']}.mp4"
    assert stored.stat().st_size > 0  # jobs are stored under the server's storage dir
    stored.unlink()
    response = httpx.get(f"{fresh.url}{VIDEOS}/{job['id']}/content")
    assert response.status_code == 404
    assert error_of(response)["message"] == "Generated video file not found on disk"
    assert httpx.delete(f"{fresh.url}{VIDEOS}/{job['id']}").status_code == 200


def test_latency_keeps_a_job_queued_before_it_runs(fresh: SimHandle) -> None:
    job = create(fresh.url, size="320x240", num_frames="96", seed="3")
    assert wait_for(fresh.url, job["id"], ("completed", "failed")) == ["queued", "in_progress", "completed"]
