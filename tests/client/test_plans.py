"""The request plans driven directly, without sockets: video jobs, cancellation, retries, logging.

These run in milliseconds; the same plans against real vomni-sim servers are in test_sync / test_async.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import pytest

from vomni_nb import _plans, _service_plans, _speech_plans, _video_plans
from vomni_nb.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    BatchItemError,
    Interrupted,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    OverloadedError,
    ResponseFormatError,
    ServerError,
    WrongServerError,
)
from vomni_nb.progress import status_text
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.protocol.retry import RetryPolicy
from vomni_nb.results import VideoResult
from tests.support.plans import FakeClock, PlanDriver, plan_core, reply, tiny_png

MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 16


def _job(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "video_gen_1", "object": "video", "status": status, "size": "64x32", "fps": 8.0, "num_frames": 8,
            "duration_s": 1.0, "model": "test/model", "error": None, **extra}


class VideoServer:
    """Answers a video job's requests: the job moves through ``statuses``, one per poll."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)

    def __call__(self, spec: RequestSpec) -> Any:
        if spec.method == "POST":
            return reply(200, _job("queued"))
        if spec.method == "DELETE":
            return reply(200, {"id": "video_gen_1", "deleted": True, "object": "video.deleted"})
        if spec.path.endswith("/content"):
            return reply(200, MP4, {"content-type": "video/mp4"})
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return reply(200, _job(status))


def test_video_create_poll_download() -> None:
    core = plan_core()
    driver = PlanDriver(VideoServer("in_progress", "completed"), clock=core.clock)  # type: ignore[arg-type]
    seen: list[str] = []
    video = driver.run(_video_plans.video(core, "a boat", seed=4, poll_interval=0.5,
                                         on_progress=lambda job: seen.append(job["status"])))
    assert driver.requests == ["POST /v1/videos", "GET /v1/videos/video_gen_1", "GET /v1/videos/video_gen_1",
                               "GET /v1/videos/video_gen_1/content"]
    assert driver.slept == [0.5, 0.5] and seen == ["queued", "in_progress", "completed"]
    assert isinstance(video, VideoResult) and video.data == MP4 and (video.width, video.height) == (64, 32)
    assert video.provenance.kind == "video" and video.seed == 4 and video.timings == {"total_s": 1.0}


def test_video_timeout_leaves_the_job_running_and_says_how_to_resume() -> None:
    # Issue 7 item 13: a timeout used to cancel the GPU job; now the job goes on and can be picked up.
    core = plan_core()
    driver = PlanDriver(VideoServer("in_progress"), clock=core.clock)  # type: ignore[arg-type]
    seen: list[dict[str, Any]] = []
    with pytest.raises(JobTimeoutError, match=r"not done after 2.5 s; it is still running") as caught:
        driver.run(_video_plans.video(core, "a boat", poll_interval=1.0, timeout=2.5,
                                      on_progress=lambda job: seen.append(dict(job))))
    assert isinstance(caught.value, APITimeoutError) and caught.value.job_id == "video_gen_1"
    assert "client.wait_video('video_gen_1')" in str(caught.value) and "download_video" in str(caught.value)
    # The last sleep ends at the timeout (2.5 s), not at the next poll (3 s).
    assert driver.slept == [1.0, 1.0, 0.5] and "DELETE /v1/videos/video_gen_1" not in driver.requests
    assert seen[-1]["status"] == "left_running"  # the status line ends saying so, with the error's time
    assert status_text(seen[-1], 3.1) == ("video_gen_1: still running after 2.5 s; resume with "
                                          "client.wait_video('video_gen_1')")
    # Later (another call, another kernel): wait_video follows the same job to its end and downloads it.
    driver = PlanDriver(VideoServer("in_progress", "completed"), clock=core.clock)  # type: ignore[arg-type]
    video = driver.run(_video_plans.wait_video(core, "video_gen_1", poll_interval=0.5, on_progress=None))
    assert driver.requests == ["GET /v1/videos/video_gen_1", "GET /v1/videos/video_gen_1",
                               "GET /v1/videos/video_gen_1/content"]
    assert video.data == MP4 and video.provenance.kind == "video" and video.model == "test/model" and video.seed is None


def test_wait_video_interrupted_leaves_the_job_and_download_video_refuses_an_unfinished_one() -> None:
    core = plan_core()
    driver = PlanDriver(VideoServer("in_progress"), clock=core.clock, interrupt_at_sleep=1)  # type: ignore[arg-type]
    with pytest.raises(Interrupted, match="still running: client.wait_video"):
        driver.run(_video_plans.wait_video(core, "video_gen_1", on_progress=None))
    assert "DELETE /v1/videos/video_gen_1" not in driver.requests
    driver = PlanDriver(VideoServer("queued"), clock=core.clock)  # type: ignore[arg-type]
    with pytest.raises(JobTimeoutError, match="still queued: wait for it with client.wait_video"):
        driver.run(_video_plans.download_video(core, "video_gen_1"))
    assert driver.requests == ["GET /v1/videos/video_gen_1"]
    driver = PlanDriver(VideoServer("completed"), clock=core.clock)  # type: ignore[arg-type]
    assert driver.run(_video_plans.download_video(core, "video_gen_1")).data == MP4


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, asyncio.CancelledError])
def test_interrupt_at_a_sleep_deletes_the_job_then_reraises(interrupt: type[BaseException]) -> None:
    core = plan_core()
    driver = PlanDriver(VideoServer("in_progress"), clock=core.clock,  # type: ignore[arg-type]
                        interrupt_at_sleep=2, interrupt=interrupt)
    with pytest.raises(interrupt):
        driver.run(_video_plans.video(core, "a boat", poll_interval=1.0))
    assert driver.requests == ["POST /v1/videos", "GET /v1/videos/video_gen_1", "DELETE /v1/videos/video_gen_1"]


def test_interrupts_in_wait_video_leave_the_job_and_a_finished_job_is_never_cancelled() -> None:
    core = plan_core()
    seen: list[str] = []
    driver = PlanDriver(VideoServer("in_progress"), clock=core.clock, interrupt_at_sleep=1)  # type: ignore[arg-type]
    with pytest.raises(Interrupted, match="still running"):
        driver.run(_video_plans.wait_video(core, "video_gen_1", on_progress=lambda job: seen.append(job["status"])))
    assert seen == ["in_progress", "left_running"]  # the status line ends saying the job goes on
    # A cancelled task (the async client) is left as it is: no DELETE, the cancellation itself re-raised.
    driver = PlanDriver(VideoServer("in_progress"), clock=core.clock,  # type: ignore[arg-type]
                        interrupt_at_sleep=1, interrupt=asyncio.CancelledError)
    with pytest.raises(asyncio.CancelledError):
        driver.run(_video_plans.wait_video(core, "video_gen_1", on_progress=None))
    assert "DELETE /v1/videos/video_gen_1" not in driver.requests

    # Ctrl-C while the status line draws a finished job: the job is done, so nothing is cancelled.
    def interrupted_at_the_end(job: dict[str, Any]) -> None:
        if job["status"] == "completed":
            raise KeyboardInterrupt

    driver = PlanDriver(VideoServer("completed"), clock=core.clock)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        driver.run(_video_plans.video(core, "a boat", poll_interval=1.0, on_progress=interrupted_at_the_end))
    assert "DELETE /v1/videos/video_gen_1" not in driver.requests


def test_an_interrupt_is_reported_even_when_the_cancel_fails() -> None:
    core = plan_core()
    server = VideoServer("in_progress")

    def answer(spec: RequestSpec) -> Any:
        return reply(502, b"<html>bad gateway</html>") if spec.method == "DELETE" else server(spec)

    seen: list[str] = []
    driver = PlanDriver(answer, clock=core.clock, interrupt_at_sleep=1)
    with pytest.raises(Interrupted, match="was cancelled on the server"):
        driver.run(_video_plans.video(core, "a boat", poll_interval=1.0, on_progress=lambda job: seen.append(job["status"])))
    assert driver.requests[-1] == "DELETE /v1/videos/video_gen_1" and seen[-1] == "cancelled"


def test_a_poll_answered_by_something_else_is_its_status_error() -> None:
    # A proxy's HTML 502 in place of the job (not JSON), or a 404 JSON error that is no failed job.
    core = plan_core()
    for answer, kind in ((reply(502, b"<html>bad gateway</html>"), ServerError),
                         (reply(404, {"error": {"message": "no such job", "code": 404}}), NotFoundError)):
        driver = PlanDriver(lambda spec, answer=answer: answer)  # type: ignore[misc]
        with pytest.raises(kind) as caught:
            driver.run(_video_plans.wait_video(core, "video_gen_1", on_progress=None))
        assert "/v1/videos/video_gen_1" in str(caught.value)
    with pytest.raises(ServerError, match="an HTML page instead of an API error"):
        PlanDriver(lambda spec: reply(502, b"<html>x</html>")).run(_video_plans.download_video(core, "video_gen_1"))


def test_download_video_of_a_failed_job_is_its_failure() -> None:
    failed = _job("failed", error={"code": 507, "message": "out of memory"})
    driver = PlanDriver(lambda spec: reply(507, failed))  # a failed job is polled with its failure's status
    with pytest.raises(JobFailedError, match="failed: out of memory") as caught:
        driver.run(_video_plans.download_video(plan_core(), "video_gen_1"))
    assert driver.requests == ["GET /v1/videos/video_gen_1"] and caught.value.advice


def test_a_failed_job_is_not_cancelled() -> None:
    core = plan_core()
    failed = _job("failed", error={"code": 500, "message": "boom"})
    answers = {"POST": reply(200, _job("queued")), "GET": reply(500, failed)}
    driver = PlanDriver(lambda spec: answers[spec.method], clock=core.clock)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="failed: boom") as caught:
        driver.run(_video_plans.video(core, "a boat", poll_interval=1.0))
    assert caught.value.job["status"] == "failed"  # type: ignore[attr-defined]
    assert "DELETE /v1/videos/video_gen_1" not in driver.requests


@pytest.mark.parametrize(("body", "jobs"), [
    ({"data": [{"id": "a"}, 3, "b", None]}, [{"id": "a"}]),
    ({"data": 5}, []), ({"data": "abc"}, []), ([1, 2], []),
])
def test_video_jobs_returns_only_job_records(body: Any, jobs: list[dict[str, Any]]) -> None:
    # A hostile list (issue 14.14): list(5) would raise TypeError, list("abc") would give letters.
    driver = PlanDriver(lambda spec: reply(200, body))
    assert driver.run(_video_plans.video_jobs(plan_core())) == jobs


def _image_body() -> dict[str, Any]:
    return {"created": 1, "data": [{"b64_json": base64.b64encode(tiny_png()).decode(), "url": None,
                                    "revised_prompt": None}], "metrics": {}}


def _busy(retry_after: str | None) -> Any:
    body = {"error": {"message": "busy", "type": "Service Unavailable", "param": None, "code": 503}}
    return reply(503, body, {"Retry-After": retry_after} if retry_after else None)


def test_503_retry_after_is_honoured_and_capped() -> None:
    core = plan_core(retry_policy=RetryPolicy(max_retries=3, max_retry_after=30.0))
    answers = [_busy("3600"), _busy("2"), reply(200, _image_body())]
    driver = PlanDriver(lambda spec: answers.pop(0), clock=core.clock)  # type: ignore[arg-type]
    image = driver.run(_plans.image(core, "a fox", seed=1))
    assert driver.slept == [30.0, 2.0] and driver.requests == ["POST /v1/images/generations"] * 3
    assert image.size == "4x2" and image.seed == 1


def test_503_exhausted_and_other_statuses_are_not_retried() -> None:
    core = plan_core(retry_policy=RetryPolicy(max_retries=2))
    driver = PlanDriver(lambda spec: _busy("1"), clock=core.clock)  # type: ignore[arg-type]
    with pytest.raises(OverloadedError):
        driver.run(_plans.image(core, "a fox"))
    assert driver.slept == [1.0, 1.0] and len(driver.sent) == 3
    # 502 too: a gateway's upstream may have done the work (issue 16 item 1; vomni-sim never answers 502).
    for status, error in ((500, ServerError), (502, ServerError), (400, BadRequestError)):
        body = {"error": {"message": "no", "type": "x", "param": None, "code": status}}
        once = PlanDriver(lambda spec, s=status, b=body: reply(s, b))  # type: ignore[misc]
        with pytest.raises(error):
            once.run(_plans.image(plan_core(), "a fox"))
        assert len(once.sent) == 1 and once.slept == []


def test_models_first_keeps_the_recorded_model() -> None:
    # Issue 7 item 7: asking /v1/models first must not leave later results without a model.
    core = plan_core(model=None)
    answers = {"/v1/models": reply(200, {"object": "list", "data": [{"id": "served/one"}]}),
               "/v1/images/generations": reply(200, _image_body())}
    driver = PlanDriver(lambda spec: answers[spec.path])
    assert driver.run(_service_plans.models(core)) == ["served/one"]
    image = driver.run(_plans.image(core, "a fox"))
    assert image.model == "served/one" and driver.requests.count("GET /v1/models") == 1


def test_logs_send_retry_and_give_up_redacted(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-plan-secret-42"
    core = plan_core(api_key=secret, retry_policy=RetryPolicy(max_retries=1))
    answers: list[Any] = [_busy("3"), APIConnectionError(f"reset while sending Bearer {secret} to {secret}")]

    def answer(spec: RequestSpec) -> Any:
        from vomni_nb._core import Failure

        item = answers.pop(0)
        return Failure(item, before_send=False) if isinstance(item, Exception) else item

    caplog.set_level(logging.DEBUG, logger="vomni_nb.client")
    with pytest.raises(APIConnectionError):
        PlanDriver(answer).run(_plans.image(core, "a fox"))
    lines = [record.getMessage() for record in caplog.records if record.name == "vomni_nb.client"]
    assert any(line.startswith("send POST http://plan.test/v1/images/generations (attempt 1)") for line in lines)
    assert any("status 503; retry 1 of 1 in 3.00 s" in line for line in lines)
    assert any("failed (after 2 attempts)" in line and "reset while sending" in line for line in lines)
    assert not any(secret in line for line in lines)


def test_a_sweep_gathers_one_image_plan_per_cell() -> None:
    core = plan_core()
    driver = PlanDriver(lambda spec: reply(200, _image_body()))
    batch = driver.run(_plans.images(core, "a fox", seeds=[3, 1], grid={"guidance": [1.0, 7.0]}, concurrency=2))
    assert [(image.seed, image.params["guidance_scale"]) for image in batch] == [(3, 1.0), (1, 1.0), (3, 7.0),
                                                                                  (1, 7.0)]
    assert driver.requests == ["POST /v1/images/generations"] * 4
    with pytest.raises(Exception, match="concurrency must be at least 1"):
        PlanDriver(lambda spec: reply(200, _image_body())).run(_plans.images(core, "a fox", concurrency=0))


@pytest.mark.parametrize(("model", "plan", "says"), [
    ("Tongyi-MAI/Z-Image-Turbo", lambda core: _speech_plans.speak(core, "hi"),
     "Tongyi-MAI/Z-Image-Turbo is an image model; send speech to a TTS server"),
    ("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", lambda core: _video_plans.video(core, "a boat", on_progress=None),
     "is a TTS model; send video to a video server"),
    ("Tongyi-MAI/Z-Image-Turbo", lambda core: _video_plans.video(core, "a boat", on_progress=None),
     "is an image model; send video to a video server"),
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", lambda core: _plans.image(core, "a fox"),
     "is an omni chat model; send images to an image server"),
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", lambda core: _speech_plans.speak(core, "hi"),
     r"or ask this model for a spoken answer: chat\(\.\.\., modalities=\['text', 'audio'\]\)"),
    ("Wan-AI/Wan2.2-TI2V-5B-Diffusers", lambda core: _plans.chat(core, "hi"), "is a video model; send chat"),
    ("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", lambda core: _plans.images(core, "a fox", seeds=[1, 2, 3]),
     "is a TTS model; send images"),
])
def test_the_wrong_server_for_the_task_is_refused_before_sending(model: str, plan: Any, says: str) -> None:
    # Issue 7 item 8: wrong advice ("retry later", "try fewer frames", "TTS model did not produce audio").
    core = plan_core(model=model)
    driver = PlanDriver(lambda spec: reply(500, {}))
    with pytest.raises(WrongServerError, match=says) as caught:
        driver.run(plan(core))
    assert driver.sent == [] and driver.slept == [] and "%omni_server list" in str(caught.value)
    assert caught.value.model == model and isinstance(caught.value, InvalidRequestError)


def test_what_a_server_does_answer_is_sent() -> None:
    # Chat on a diffusion model answers with pictures, an edit on Z-Image is image-to-image on 0.30.0: both
    # sent; an unknown id is left to the server.
    for model, plan in (("Tongyi-MAI/Z-Image-Turbo", lambda core: _plans.chat(core, "a fox")),
                        ("Tongyi-MAI/Z-Image-Turbo", lambda core: _plans.edit(core, tiny_png(), "blue")),
                        ("my-served-name", lambda core: _speech_plans.speak(core, "hi"))):
        driver = PlanDriver(lambda spec: reply(400, {"error": {"message": "no", "code": 400}}))
        with pytest.raises(BadRequestError):
            driver.run(plan(plan_core(model=model)))
        assert len(driver.sent) == 1


def test_chat_asks_for_text_unless_audio_is_asked_for_then_mp3() -> None:
    # Issue 7 item 9: the server's default (text + WAV audio) put ~1.5 MB per answer into the notebook.
    sent: list[RequestSpec] = []
    answer = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}

    def server(spec: RequestSpec) -> Any:
        sent.append(spec)
        return reply(200, answer)

    omni = plan_core(model="Qwen/Qwen3-Omni-30B-A3B-Instruct")
    for arguments, modalities, audio in (({}, ["text"], None),
                                         ({"modalities": ["text", "audio"]}, ["text", "audio"], {"format": "mp3"}),
                                         ({"voice": "Ethan"}, ["text", "audio"], {"format": "mp3"}),
                                         ({"audio_format": "wav"}, ["text", "audio"], {"format": "wav"}),
                                         ({"modalities": "audio"}, ["audio"], {"format": "mp3"})):
        result = PlanDriver(server).run(_plans.chat(omni, "hi", **arguments))
        assert sent[-1].json["modalities"] == modalities and sent[-1].json.get("audio") == audio, arguments
        assert result.recipe["modalities"] == modalities  # the recipe asks for the same shape again
    PlanDriver(server).run(_plans.chat_stream(omni, "hi", modalities=["text", "audio"]))
    assert "audio" not in sent[-1].json  # a stream's audio stays WAV chunks a live player can play
    PlanDriver(server).run(_plans.chat(plan_core(model="Tongyi-MAI/Z-Image-Turbo"), "a fox"))
    assert "modalities" not in sent[-1].json  # a diffusion model's chat answers with pictures


def test_a_failed_job_says_the_memory_advice_once() -> None:
    # Issue 7 item 18: the 507 advice was said twice (the server's words, then ours).
    core = plan_core()
    reason = "CUDA out of memory: try a smaller resolution, fewer images, or a quantized model"
    server = VideoServer("failed")
    failed = _job("failed", error={"code": 507, "message": reason})
    driver = PlanDriver(lambda spec: reply(507, failed) if spec.method == "GET" else server(spec))
    with pytest.raises(JobFailedError) as caught:
        driver.run(_video_plans.video(core, "a boat", poll_interval=0.1, on_progress=None))
    assert str(caught.value).count("quantized") == 1 and "fewer frames" not in str(caught.value)


def test_a_batch_item_refused_by_the_checkpoint_says_which_and_never_shows_the_key() -> None:
    # The failed item is returned in its place, not raised: redaction must reach it in the plan itself.
    secret = "sk-batch-2f9c"
    core = plan_core(model="Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", api_key=secret)
    wav = base64.b64encode(b"RIFF" + b"\0" * 4 + b"WAVE").decode()
    answer = {"results": [
        {"index": 0, "status": "error", "error": f"Model does not support task_type='Base' (voice {secret!r})"},
        {"index": 1, "status": "error", "error": f"Invalid voice '{secret}'"},
        {"index": 2, "status": "success", "audio_data": wav},
    ]}
    driver = PlanDriver(lambda spec: reply(200, answer))
    cloned, unknown, _ = driver.run(_speech_plans.speak_batch(core, ["a", "b", "c"], response_format="mp3"))
    assert isinstance(cloned, BatchItemError) and "is a CustomVoice checkpoint" in cloned.advice
    assert isinstance(unknown, BatchItemError) and unknown.advice.startswith("Check this item's parameters")
    for item in (cloned, unknown):
        assert secret not in str(item) and secret not in item.reason and "'***'" in item.reason


def test_answers_that_are_not_what_was_asked() -> None:
    core = plan_core()
    # A chat-route image request answered with text only, /health with a 500, a voice upload without its voice.
    text_only = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "no picture"},
                              "finish_reason": "stop"}]}
    with pytest.raises(ResponseFormatError, match="holds no image"):
        PlanDriver(lambda spec: reply(200, text_only)).run(_plans.image(core, "a fox", via="chat"))
    with pytest.raises(ServerError, match="500"):
        PlanDriver(lambda spec: reply(500, {"error": {"message": "boom", "code": 500}})).run(_service_plans.health(core))
    with pytest.raises(ResponseFormatError, match="has no 'voice'"):
        PlanDriver(lambda spec: reply(200, {"success": True})).run(
            _service_plans.upload_voice(core, "mine", tiny_png(), consent="I agree"))


@pytest.mark.parametrize(("plan", "says"), [
    (lambda core: _plans.image(core, "a fox", via="chat", output_format="jpeg"), "always PNG"),
    (lambda core: _plans.images(core, "a fox", seeds=[]), "at least one seed"),
])
def test_impossible_image_requests_are_refused_before_sending(plan: Any, says: str) -> None:
    driver = PlanDriver(lambda spec: reply(500))
    with pytest.raises(InvalidRequestError, match=says):
        driver.run(plan(plan_core()))
    assert driver.requests == []
