"""OmniClient round-trips every capability against real vomni-sim servers."""

from __future__ import annotations

import dataclasses

import pytest

from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchItemError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    WrongServerError,
)
from vomni_nb.protocol.wav import parse_wav
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult
from vomni_nb.streams import AudioDelta, ImageDelta, TextDelta
from tests.support.sims import EDIT_MODEL, IMAGE_MODEL, OMNI_MODEL, TTS_MODEL, VIDEO_MODEL, free_port


@dataclasses.dataclass
class Handle:
    """What the server manager's Server handle looks like to a client (duck-typed)."""

    url: str
    model: str
    api_key: str | None = None


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(buffer, "PNG")
    return buffer.getvalue()


def test_image_generation(image_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url) as client:
        result = client.image("a red fox", size="64x48", steps=2, guidance=3.5, negative="blur")
        assert isinstance(result, ImageResult) and (result.format, result.width, result.height) == ("png", 64, 48)
        assert result.data.startswith(b"\x89PNG") and isinstance(result.seed, int)  # seed chosen client-side
        assert result.model == IMAGE_MODEL and result.server_url == image_server.url
        assert result.params["num_inference_steps"] == 2 and result.timings["total_s"] > 0
        again = client.image("a red fox", size="64x48", steps=2, guidance=3.5, negative="blur", seed=result.seed)
        assert again.data == result.data  # the recorded seed reproduces the image
        jpeg = client.image("a red fox", size="64x64", output_format="jpeg", seed=1)
        assert jpeg.format == "jpeg" and jpeg.data.startswith(b"\xff\xd8")
        batch = client.image("a red fox", size="64x64", n=3, seed=5)
        assert isinstance(batch, ImageBatch) and len(batch) == 3 and {i.seed for i in batch} == {5}
        assert len({i.data for i in batch}) == 3


def test_image_via_chat(image_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url) as client:
        result = client.image("a red fox", size="64x64", seed=9, via="chat")
        assert (result.format, result.size, result.seed, result.params["via"]) == ("png", "64x64", 9, "chat")
        with pytest.raises(InvalidRequestError, match="always PNG"):
            client.image("a red fox", via="chat", output_format="jpeg")
        stream = client.chat_stream("a red fox", extra={"size": "64x64", "seed": 1})
        events = list(stream)  # pure diffusion ignores stream=true and answers JSON; replayed as events
        assert [type(e) for e in events] == [ImageDelta] and stream.finish().images[0].width == 64


def test_sweep_runs_concurrently_and_keeps_order(image_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url) as client:
        batch = client.images("a red fox", seeds=[3, 1, 2], size="64x64", concurrency=3)
        assert [i.seed for i in batch] == [3, 1, 2]
        grid = client.images("a red fox", seeds=[4], grid={"guidance": [1.0, 7.0], "steps": [1, 2]}, size="64x64")
        assert [(i.params["guidance_scale"], i.params["num_inference_steps"]) for i in grid] == [
            (1.0, 1), (1.0, 2), (7.0, 1), (7.0, 2)]
        shared = client.images("a red fox", grid=[{"guidance": 1.0}, {"guidance": 2.0}], size="64x64")
        assert shared[0].seed == shared[1].seed  # no seeds given: one shared seed, so only the grid differs


def test_sweep_inside_a_running_event_loop(image_server) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    async def cell() -> ImageBatch:  # like a Jupyter cell: sync code while a loop runs
        with OmniClient(image_server.url) as client:
            return client.images("a red fox", seeds=[1, 2], size="64x64")

    assert len(asyncio.run(cell())) == 2


def test_edit(edit_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(Handle(edit_server.url, EDIT_MODEL)) as client:
        source = client.image("a house", size="64x64", seed=1)
        edited = client.edit(source, "paint it blue", seed=2)
        assert edited.size == "64x64" and edited.data != source.data and edited.params["size"] == "auto"
        path = source.save(tmp_path)
        two = client.edit([path], "paint it blue", size="32x32", n=2, seed=3)
        assert isinstance(two, ImageBatch) and [i.size for i in two] == ["32x32", "32x32"]


def test_chat_text_and_audio(omni_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(omni_server.url) as client:
        text = client.chat("Say hello", modalities=["text"], seed=1)
        assert isinstance(text, ChatResult) and text.text and text.audio is None and text.model == OMNI_MODEL
        both = client.chat("Say hello", seed=1, system="be brief", max_tokens=50, modalities=["text", "audio"],
                           audio_format="wav")
        assert both.text and both.audio is not None and both.sample_rate == 24000
        assert parse_wav(both.audio).frames == both.audio_frames
        pcm = client.chat("Say hello", modalities=["audio"], audio_format="pcm")
        assert pcm.audio_format == "pcm" and pcm.audio
        seen = client.chat("What is in this picture?", images=[_tiny_png()], modalities=["text"])
        assert seen.text and seen.params["modalities"] == ["text"]


def test_chat_stream(omni_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(omni_server.url) as client:
        stream = client.chat_stream("Tell me a story", seed=2, modalities=["text", "audio"])
        kinds = [type(event) for event in stream]
        assert TextDelta in kinds and AudioDelta in kinds
        result = stream.finish()
        assert result.text == stream.text and result.audio == stream.audio and result.finish_reason == "stop"
        assert result.timings["first_event_s"] <= result.timings["total_s"]
        assert parse_wav(result.audio or b"").frames == result.audio_frames
        plain = client.chat("Tell me a story", seed=2, modalities=["text"])
        with client.chat_stream("Tell me a story", seed=2, modalities=["text"]) as streamed:
            assert streamed.finish().text == plain.text


def test_speech_all_modes(tts_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(tts_server.url) as client:
        wav = client.speak("Hello world", voice="vivian", seed=1)
        assert isinstance(wav, SpeechResult) and wav.sample_rate == 24000 and wav.duration_s and wav.voice == "vivian"
        assert wav.usage.get("total_tokens", 0) > 0
        raw = client.speak("Hello world", voice="vivian", response_format="pcm", seed=1)
        assert raw.audio == parse_wav(wav.audio).pcm
        mp3 = client.speak("Hello world", response_format="mp3")
        assert mp3.format == "mp3" and mp3.audio
        streamed = client.speak_stream("Hello world", voice="vivian", seed=1)
        assert all(isinstance(e, AudioDelta) for e in streamed)
        assert parse_wav(streamed.finish().audio).pcm == raw.audio
        sse = client.speak_stream("Hello world", voice="vivian", seed=1, mode="sse", response_format="pcm")
        assert sse.finish().audio == raw.audio and sse.finish().usage["total_tokens"] > 0
        with pytest.raises(InvalidRequestError, match="wav or pcm"):
            client.speak_stream("Hello", response_format="flac")
        with pytest.raises(WrongServerError, match="is a TTS model; send chat to an omni chat server"):
            client.chat("hi")  # refused before sending: the client knows this model has no chat


def test_voices(start_sim, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(TTS_MODEL)
    with OmniClient(sim.url) as client:
        sample = client.speak("This is my voice sample.", voice="vivian")
        with pytest.warns(UserWarning, match="cannot speak with it.*need a Base checkpoint"):
            voice = client.voices.upload("my_voice", sample, consent="I recorded this myself",
                                         ref_text="This is my voice")
        assert voice["name"] == "my_voice" and voice["consent"] == "I recorded this myself"
        listing = client.voices.list()
        assert "my_voice" in [v["name"] for v in listing["uploaded_voices"]]
        assert client.voices.delete("my_voice")["success"] is True
        with pytest.raises(NotFoundError, match="my_voice"):
            client.voices.delete("my_voice")


def test_video_create_poll_download(video_server) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    with OmniClient(video_server.url) as client:
        video = client.video("a boat", size="64x64", seconds=1, fps=8, seed=4, poll_interval=0.05,
                             on_progress=lambda job: seen.append(job["status"]))
        assert video.data[4:8] == b"ftyp" and (video.width, video.height, video.fps, video.num_frames) == (64, 64, 8.0, 9)  # Wan makes 4k+1 frames
        assert seen[0] == "queued" and seen[-1] == "completed" and video.seed == 4
        assert video.id in [job["id"] for job in client.video_jobs()]
        assert client.cancel_video(video.id)["deleted"] is True
        assert video.id not in [job["id"] for job in client.video_jobs()]
        with pytest.raises(NotFoundError, match="Video not found"):
            client.cancel_video(video.id)


def test_video_failure_and_cancel(start_sim) -> None:  # type: ignore[no-untyped-def]
    failing = start_sim(VIDEO_MODEL, "--rate-507", "1")
    with OmniClient(failing.url) as client, pytest.raises(JobFailedError, match="failed") as caught:
        client.video("a boat", size="64x64", seconds=1, fps=8, poll_interval=0.05)
    assert caught.value.job["status"] == "failed"
    slow = start_sim(VIDEO_MODEL, "--latency", "5")
    jobs: list[str] = []

    def interrupt(job: dict) -> None:  # type: ignore[type-arg]
        jobs.append(job["id"])
        raise KeyboardInterrupt

    with OmniClient(slow.url) as client:
        with pytest.raises(KeyboardInterrupt):
            client.video("a boat", size="64x64", seconds=1, fps=8, on_progress=interrupt)
        assert jobs and jobs[0] not in [job["id"] for job in client.video_jobs()]  # DELETEd on interrupt
    assert f"DELETE /v1/videos/{jobs[0]}" in slow.log()


def test_models_health_version(image_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(base_url=image_server.url + "/v1/") as client:  # a trailing /v1 is forgiven
        assert client.models() == [IMAGE_MODEL]
        assert client.health()["ok"] is True
        assert client.version() == "0.30.0"


def test_wrong_model_lists_served_names(omni_server, image_server) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(omni_server.url) as client, pytest.raises(NotFoundError, match=f"This server serves: {OMNI_MODEL}"):
        client.chat("hi", model="gpt-4o")
    with OmniClient(image_server.url, model="other/model") as client, pytest.raises(BadRequestError, match="mismatch"):
        client.image("fox", size="64x64")


def test_api_keys(start_sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    secret = "sk-test-7f3a9"
    sim = start_sim(IMAGE_MODEL, api_key=secret)
    monkeypatch.delenv("VOMNI_API_KEY", raising=False)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    with OmniClient(sim.url) as client, pytest.raises(AuthenticationError, match="VOMNI_API_KEY") as caught:
        client.image("fox", size="64x64")
    assert secret not in str(caught.value)
    with OmniClient(sim.url, api_key="wrong-key") as client, pytest.raises(AuthenticationError) as wrong:
        client.image("fox", size="64x64")
    assert "wrong-key" not in str(wrong.value)
    with OmniClient(sim.url, api_key=secret) as client:
        assert client.image("fox", size="64x64").width == 64
        assert secret not in repr(client) and "***" in repr(client)
    monkeypatch.setenv("VLLM_API_KEY", secret)
    with OmniClient(sim.url) as client:
        assert client.health()["ok"] and client.models() == [IMAGE_MODEL]
    monkeypatch.setenv("VOMNI_API_KEY", secret)
    monkeypatch.setenv("VLLM_API_KEY", "ignored")
    with OmniClient(Handle(sim.url, IMAGE_MODEL)) as client:
        assert client.image("fox", size="64x64").model == IMAGE_MODEL


def test_connection_refused_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with OmniClient(url, max_retries=1, sleep=lambda _: None) as client:
        with pytest.raises(APIConnectionError, match="omni_server status") as caught:
            client.health()
    assert url in str(caught.value)


def test_constructor_arguments(start_sim, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequestError):
        OmniClient("http://a", base_url="http://b")
    with pytest.raises(InvalidRequestError, match="no .url"):
        OmniClient(object())
    client = OmniClient("127.0.0.1:9")
    assert client.base_url == "http://127.0.0.1:9"
    client.close()
    assert AsyncOmniClient(Handle("http://h:1", "m", "k")).model == "m"
    monkeypatch.setenv("VOMNI_BASE_URL", "http://127.0.0.1:7/v1")
    with OmniClient(api_key="k", model="named/model") as from_env:
        assert from_env.base_url == "http://127.0.0.1:7" and from_env.model == "named/model"
        assert repr(from_env) == "OmniClient(base_url='http://127.0.0.1:7', model='named/model', api_key='***')"
    # max_retries bounds the retries of a refused connection; sleep is what waits between them.
    waits: list[float] = []
    with OmniClient(f"http://127.0.0.1:{free_port()}", max_retries=3, sleep=waits.append) as refused:
        with pytest.raises(APIConnectionError):
            refused.models()
    assert len(waits) == 3
    # A float timeout bounds the whole answer: a server slower than it times out, and says after how long.
    slow = start_sim(IMAGE_MODEL, "--latency", "2")
    with OmniClient(slow.url, timeout=0.3, model=IMAGE_MODEL) as impatient:
        with pytest.raises(APITimeoutError, match="after 0.3 s"):
            impatient.image("fox", size="64x64")


def test_with_options_copies_and_changes_settings(start_sim) -> None:  # type: ignore[no-untyped-def]
    slow = start_sim(IMAGE_MODEL, "--latency", "1")
    with OmniClient(slow.url) as client:
        impatient = client.with_options(timeout=0.2)
        with pytest.raises(APITimeoutError, match="after 0.2 s"):
            impatient.image("fox", size="64x64")
        assert client.image("fox", size="64x64").width == 64  # the original keeps its timeout
        named = client.with_options(model="other/model")
        assert named.model == "other/model" and client.model == IMAGE_MODEL and "other/model" in repr(named)
        with pytest.raises(BadRequestError, match="mismatch"):
            named.image("fox", size="64x64")  # the copy sends its model; the server runs another
        assert type(named) is OmniClient and named._http is client._http  # one connection pool


def test_models_first_keeps_results_model(image_server) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 7: client.models() first (as the quickstart does) used to make every later result's model None.
    with OmniClient(image_server.url) as client:
        assert client.models() == [IMAGE_MODEL]
        assert client.image("fox", size="64x64").model == IMAGE_MODEL
        assert client.images("fox", seeds=[1, 2], size="64x64")[1].model == IMAGE_MODEL

    async def main() -> str | None:
        async with AsyncOmniClient(image_server.url) as client:
            await client.models()
            return (await client.image("fox", size="64x64")).model

    import asyncio

    assert asyncio.run(main()) == IMAGE_MODEL


def test_explicit_parameters_recipes_and_wire_spellings(image_server, tts_server, video_server) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 15: Shift-Tab shows every parameter; results' params (wire names) and recipes go back in.
    import inspect

    for method, names in ((OmniClient.speak, {"voice", "response_format", "speed", "seed", "extra"}),
                          (OmniClient.chat, {"system", "modalities", "audio_format", "max_tokens", "extra"}),
                          (OmniClient.video, {"seconds", "fps", "poll_interval", "timeout", "on_progress", "extra"}),
                          (OmniClient.speak_stream, {"mode", "voice", "response_format"}),
                          (OmniClient.chat_stream, {"system", "modalities"})):
        parameters = inspect.signature(method).parameters
        assert names <= set(parameters) and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()), method
    import typing

    assert typing.get_args(typing.get_type_hints(OmniClient.speak)["response_format"]) == ("wav", "pcm", "flac", "mp3",
                                                                                          "opus")
    with OmniClient(image_server.url) as client:
        image = client.image("a red fox", size="64x48", steps=2, guidance=3.5, negative="blur", extra={"true_cfg_scale": 1})
        assert image.recipe["steps"] == 2 and image.recipe["extra"] == {"true_cfg_scale": 1}
        assert client.image(**image.recipe).data == image.data
        plain = client.image("a red fox", size="64x48", steps=2, guidance=3.5, negative="blur")
        assert client.image(**plain.params).data == plain.data  # num_inference_steps=, guidance_scale=, ...
        with pytest.raises(InvalidRequestError, match="not both"):
            client.image("fox", steps=2, num_inference_steps=3)
        with pytest.raises(InvalidRequestError, match="takes no 'guidnce'; valid names: size, steps, guidance"):
            client.images("fox", grid={"guidnce": [1, 2]})
        with pytest.raises(InvalidRequestError, match=r"speak\(\) takes no 'vocie'; valid names: text, voice, "):
            client.speak("hi", vocie="x")  # type: ignore[call-arg]
        with pytest.raises(InvalidRequestError, match="takes no 'sise'"):
            client.image(**{**image.recipe, "sise": "64x64"})  # a recipe edited by hand
    with OmniClient(tts_server.url) as client:
        speech = client.speak("Hello there", voice="vivian", response_format="pcm", seed=2)
        assert speech.recipe == {"text": "Hello there", "voice": "vivian", "response_format": "pcm", "seed": 2}
        assert client.speak(**speech.recipe).audio == speech.audio
    with OmniClient(video_server.url) as client:
        video = client.video("a boat", size="64x64", seconds=1, fps=8, seed=3, steps=2, poll_interval=0.05)
        assert video.recipe["seconds"] == 1 and video.recipe["steps"] == 2
        again = client.video(**video.recipe, poll_interval=0.05)
        assert (again.data, again.seed) == (video.data, 3)


def test_a_key_echoed_by_the_server_never_reaches_an_error(start_sim) -> None:  # type: ignore[no-untyped-def]
    # Issue 16 item 2: vLLM's 400 validation message quotes the bad value, so a key sent in a field comes
    # back in the message and the body; a failed video job's record quotes the prompt.
    import asyncio
    import json

    secret = "sk-echoed-7c41a9"
    tts = start_sim(TTS_MODEL, api_key=secret)
    video_sim = start_sim(VIDEO_MODEL, api_key=secret)
    errors: list[Exception] = []
    with OmniClient(tts.url, api_key=secret) as client, pytest.raises(BadRequestError) as sync_error:
        client.speak("hello", extra={"speed": secret})
    errors.append(sync_error.value)

    async def main() -> None:
        async with AsyncOmniClient(tts.url, api_key=secret) as client:
            await client.speak("hello", extra={"sample_rate": secret})

    with pytest.raises(BadRequestError) as async_error:
        asyncio.run(main())
    errors.append(async_error.value)
    with OmniClient(video_sim.url, api_key=secret) as client, pytest.raises(JobFailedError) as job_error:
        client.video(f"a boat [[fail]] {secret}", size="64x64", seconds=1, fps=8, poll_interval=0.05)
    errors.append(job_error.value)
    # A failed batch item quotes its voice and comes back in the list, never raised past the client's guard.
    with OmniClient(tts.url, api_key=secret) as client:
        spoken, refused = client.speak_batch(["hello", {"text": "bye", "voice": secret}])
    assert isinstance(spoken, SpeechResult) and isinstance(refused, BatchItemError)
    assert refused.reason.startswith("Invalid voice '***'")
    errors.append(refused)
    for error in errors:
        dumped = json.dumps([getattr(error, "body", None), getattr(error, "job", None)], default=str)
        assert secret not in str(error) and secret not in repr(error) and secret not in dumped, error
    assert "'input': '***'" in str(errors[0]) and "'input': '***'" in str(errors[1])  # echoed, then redacted
    assert "***" in job_error.value.job["prompt"]  # the poll answered the failed job, prompt included


def test_speech_midstream_failures_keep_partial_audio(start_sim) -> None:  # type: ignore[no-untyped-def]
    from vomni_nb.errors import StreamError

    sim = start_sim(TTS_MODEL, "--midstream-error-after", "2")
    text = "Hello world, this is a longer sentence to stream"
    with OmniClient(sim.url) as client:
        raw = client.speak_stream(text, mode="audio")
        with pytest.raises(StreamError, match="connection broke") as broken:
            raw.finish()  # the server drops the connection without the final chunk
        sse = client.speak_stream(text, mode="sse")
        with pytest.raises(StreamError, match="after the stream started") as reported:
            sse.finish()
    assert "%omni_server logs" in str(broken.value)  # a dropped connection usually means a failed generation
    for error in (broken.value, reported.value):
        assert isinstance(error.partial, bytes) and parse_wav(error.partial).frames > 0
    assert sim.log().count("POST /v1/audio/speech") == 2  # neither was retried


def test_the_wrong_server_says_where_the_task_goes(image_server, tts_server, omni_server, video_server) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 8, as the issue tried it: speech from an image model, video from a TTS or an image model.
    cases = [(image_server, lambda c: c.speak("hello"), f"{IMAGE_MODEL} is an image model; send speech to a TTS server"),
             (tts_server, lambda c: c.video("a boat"), f"{TTS_MODEL} is a TTS model; send video to a video server"),
             (image_server, lambda c: c.video("a boat"), "is an image model; send video to a video server"),
             (omni_server, lambda c: c.image("a fox"), f"{OMNI_MODEL} is an omni chat model; send images"),
             (video_server, lambda c: c.chat("hi"), f"{VIDEO_MODEL} is a video model; send chat")]
    for server, call, says in cases:
        before = server.log().count("POST /v1/")
        waits: list[float] = []
        with OmniClient(server.url, sleep=waits.append) as client, pytest.raises(WrongServerError, match=says) as caught:
            call(client)
        assert "retry later" not in str(caught.value) and "fewer frames" not in str(caught.value)
        assert waits == [] and server.log().count("POST /v1/") == before  # nothing sent, nothing retried


def test_a_chat_answer_is_light_in_the_notebook(omni_server) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 9: the default answer carried ~1.5 MB of WAV; now text, and a spoken answer is MP3.
    import json

    def weight(result: ChatResult) -> int:
        data, metadata = result._repr_mimebundle_()
        return len(json.dumps(data)) + len(json.dumps(metadata))

    prompt = "Explain in a few sentences why the sky is blue, as to a ten-year-old."
    with OmniClient(omni_server.url) as client:
        text = client.chat(prompt, seed=1)
        spoken = client.chat(prompt, seed=1, modalities=["text", "audio"])
        wav = client.chat(prompt, seed=1, modalities=["text", "audio"], audio_format="wav")
    assert text.audio is None and text.params["modalities"] == ["text"] and weight(text) < 5_000
    assert spoken.audio_format == "mp3" and spoken.audio and spoken.audio_duration_s == wav.audio_duration_s
    assert weight(spoken) * 8 < weight(wav) and spoken.text == text.text


def test_a_video_timeout_leaves_the_job_for_another_client_to_pick_up(start_sim) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 13: the job survives the timeout; a new client (as after a kernel restart) resumes it.
    from vomni_nb.errors import JobTimeoutError

    slow = start_sim(VIDEO_MODEL, "--latency", "1.5")
    with OmniClient(slow.url) as client, pytest.raises(JobTimeoutError) as caught:
        client.video("a boat", size="64x64", seconds=1, fps=8, seed=4, timeout=0.2, poll_interval=0.05)
    job_id = caught.value.job_id
    assert f"client.wait_video({job_id!r})" in str(caught.value) and f"DELETE /v1/videos/{job_id}" not in slow.log()
    with OmniClient(slow.url) as fresh:
        with pytest.raises(JobTimeoutError, match="still"):
            fresh.download_video(job_id)
        seen: list[str] = []
        video = fresh.wait_video(job_id, poll_interval=0.05, on_progress=lambda job: seen.append(job["status"]))
        assert video.id == job_id and video.prompt == "a boat" and video.model == VIDEO_MODEL and seen[-1] == "completed"
        assert fresh.download_video(job_id).data == video.data
    # Issue 7 item 18: the geometry comes from the MP4 itself, the duration rounded in the repr.
    assert (video.width, video.height, video.num_frames) == (64, 64, 9) and "1.12s @ 8 fps, 9 frames" in repr(video)


def test_a_base_url_with_an_endpoint_path_is_cut_back_to_the_server(image_server, tts_server) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 18: a URL copied from a curl line gave a doubled-path 404.
    with OmniClient(image_server.url + "/v1/images/generations") as client:
        assert client.base_url == image_server.url and client.image("a fox", size="64x64").width == 64
    with OmniClient(f"{tts_server.url}/v1/audio/speech", model="my-name") as client, \
            pytest.raises(NotFoundError) as caught:  # any error now reads one way: "<status> <reason> from <url>: ..."
        client.speak("hi")
    assert str(caught.value).startswith(f"404 Not Found from {tts_server.url}/v1/audio/speech: ")
