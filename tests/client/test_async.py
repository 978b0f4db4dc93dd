"""AsyncOmniClient round-trips, and parity: the same calls through both clients give the same results."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.async_client import AsyncVoices
from vomni_nb.client import Voices
from vomni_nb.errors import BadRequestError, InvalidRequestError, JobFailedError, NotFoundError, StreamError
from vomni_nb.results import ImageBatch
from vomni_nb.streams import AudioDelta, TextDelta
from tests.support.sims import OMNI_MODEL, VIDEO_MODEL, free_port


def run(factory: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(factory())  # type: ignore[arg-type]


def test_async_images_and_sweep(image_server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with AsyncOmniClient(image_server.url) as client:
            image = await client.image("a red fox", size="64x64")
            assert image.width == 64 and isinstance(image.seed, int)
            batch = await client.images("a red fox", seeds=[1, 2, 3, 4, 5], size="64x64", concurrency=2)
            assert isinstance(batch, ImageBatch) and [i.seed for i in batch] == [1, 2, 3, 4, 5]
            grid = await client.images("a red fox", grid={"guidance": [2, 4]}, seed=3, size="64x64")
            assert [i.seed for i in grid] == [3, 3] and [i.params["guidance_scale"] for i in grid] == [2, 4]
            with pytest.raises(InvalidRequestError, match="not both"):
                await client.images("a red fox", seeds=[1], seed=3)
            chat = await client.image("a red fox", size="64x64", via="chat", seed=1)
            assert chat.format == "png"
            assert await client.models() and (await client.health())["ok"] and await client.version() == "0.30.0"
            with pytest.raises(InvalidRequestError):
                await client.image("a red fox", n=0)

    run(main)


def test_async_streams_speech_voices(omni_server, tts_server) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with AsyncOmniClient(omni_server.url) as client:
            stream = await client.chat_stream("Tell me a story", seed=3, modalities=["text", "audio"])
            kinds = {type(event) async for event in stream}
            assert kinds == {TextDelta, AudioDelta}
            result = await stream.finish()
            assert result.text and result.audio and result.model == OMNI_MODEL
            with pytest.raises(NotFoundError, match=OMNI_MODEL):
                await client.chat("hi", model="nope")
        async with AsyncOmniClient(tts_server.url) as client:
            speech = await client.speak("Hello", response_format="pcm")
            raw = await client.speak_stream("Hello", response_format="pcm")
            async with raw:
                assert (await raw.finish()).audio == speech.audio
            sse = await client.speak_stream("Hello", mode="sse", response_format="pcm")
            assert (await sse.finish()).audio == speech.audio
            assert "vivian" in (await client.voices.list())["voices"]
            with pytest.raises(NotFoundError):
                await client.voices.delete("nobody")

    run(main)


def test_async_video_and_failures(video_server, start_sim) -> None:  # type: ignore[no-untyped-def]
    # Every job fails with 507, but only after 1.5 s: time enough to cancel one first.
    failing = start_sim(VIDEO_MODEL, "--rate-507", "1", "--latency", "1.5")
    jobs: list[str] = []

    async def main() -> None:
        async with AsyncOmniClient(video_server.url) as client:
            video = await client.video("a boat", size="64x64", seconds=1, fps=8, poll_interval=0.05)
            assert video.data[4:8] == b"ftyp"
            assert video.id in [job["id"] for job in await client.video_jobs()]
        async with AsyncOmniClient(failing.url) as client:
            task = asyncio.create_task(client.video("a boat", size="64x64", seconds=1, fps=8, poll_interval=0.05,
                                                    on_progress=lambda job: jobs.append(job["id"])))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert jobs and jobs[0] not in [job["id"] for job in await client.video_jobs()]
            with pytest.raises(JobFailedError, match="out of memory"):
                await client.video("a boat", size="64x64", seconds=1, fps=8, poll_interval=0.05)

    run(main)
    assert f"DELETE /v1/videos/{jobs[0]}" in failing.log()


def test_async_midstream_error(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(OMNI_MODEL, "--midstream-error-after", "3", "--tokens-per-second", "2000")

    async def main() -> None:
        async with AsyncOmniClient(sim.url) as client:
            stream = await client.chat_stream("tell me a story", modalities=["text"])
            with pytest.raises(StreamError) as caught:
                await stream.finish()
            assert caught.value.partial == stream.text

    run(main)


def _comparable(result: Any) -> Any:
    """What must be equal between the two clients (timings and ids naturally differ)."""
    if isinstance(result, ImageBatch):
        return [_comparable(i) for i in result]
    fields = ("data", "audio", "text", "format", "width", "height", "seed", "params", "model", "server_url",
              "sample_rate", "frames", "images", "finish_reason", "fps", "num_frames", "duration_s", "prompt")
    values = {name: getattr(result, name) for name in fields if hasattr(result, name)}
    if "images" in values:
        values["images"] = [_comparable(i) for i in values["images"]]
    return values


PARITY_CALLS: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    ("image", "image", ("a red fox",), {"size": "64x64", "seed": 11, "steps": 2}),
    ("image", "image", ("a red fox",), {"size": "64x64", "seed": 11, "n": 2, "output_format": "webp"}),
    ("image", "image", ("a red fox",), {"size": "64x64", "seed": 11, "via": "chat"}),
    ("image", "images", ("a red fox",), {"size": "64x64", "seeds": [1, 2]}),
    ("omni", "chat", ("Say hello",), {"seed": 5}),
    ("omni", "chat", ("Say hello",), {"seed": 5, "modalities": ["text"]}),
    ("tts", "speak", ("Hello there",), {"voice": "vivian", "seed": 2}),
    ("tts", "speak", ("Hello there",), {"response_format": "flac", "seed": 2}),
    ("video", "video", ("a boat",), {"size": "64x64", "seconds": 1, "fps": 8, "seed": 3, "poll_interval": 0.05}),
]


def test_sync_async_parity(image_server, omni_server, tts_server, video_server) -> None:  # type: ignore[no-untyped-def]
    servers = {"image": image_server, "omni": omni_server, "tts": tts_server, "video": video_server}
    sync_results = []
    for server, method, args, kwargs in PARITY_CALLS:
        with OmniClient(servers[server].url) as client:
            sync_results.append(getattr(client, method)(*args, **kwargs))

    async def all_async() -> list[Any]:
        results = []
        for server, method, args, kwargs in PARITY_CALLS:
            async with AsyncOmniClient(servers[server].url) as client:
                results.append(await getattr(client, method)(*args, **kwargs))
        return results

    async_results = run(all_async)
    for call, left, right in zip(PARITY_CALLS, sync_results, async_results):
        assert type(left) is type(right), call
        assert _comparable(left) == _comparable(right), call

    async def streams() -> tuple[str, bytes | None]:
        async with AsyncOmniClient(omni_server.url) as client:
            result = await (await client.chat_stream("Say hello", seed=5)).finish()
            return result.text, result.audio

    with OmniClient(omni_server.url) as client:
        sync_stream = client.chat_stream("Say hello", seed=5).finish()
    assert (sync_stream.text, sync_stream.audio) == run(streams)

    async def bad() -> None:
        async with AsyncOmniClient(image_server.url) as client:
            await client.image("fox", size="64x64", extra={"size": "64"})

    with pytest.raises(BadRequestError) as async_error:
        run(bad)
    with OmniClient(image_server.url) as client, pytest.raises(BadRequestError) as sync_error:
        client.image("fox", size="64x64", extra={"size": "64"})
    assert str(async_error.value) == str(sync_error.value)


ASYNC_ONLY = {"aclose"}  # the name asyncio code expects for close()


def _public_members(cls: type) -> dict[str, Any]:
    return {name: member for name, member in inspect.getmembers(cls) if not name.startswith("_")}


@pytest.mark.parametrize(("sync_cls", "async_cls"), [(OmniClient, AsyncOmniClient), (Voices, AsyncVoices)])
def test_both_clients_have_the_same_methods_and_signatures(sync_cls: type, async_cls: type) -> None:
    # Names, parameters (kinds, defaults, annotations) and docstrings; only sync vs async and the return
    # type (ChatStream vs AsyncChatStream) may differ.
    sync_members, async_members = _public_members(sync_cls), _public_members(async_cls)
    assert set(sync_members) == set(async_members) - ASYNC_ONLY
    for name, member in sync_members.items():
        twin = async_members[name]
        if member is twin:
            continue  # shared through the base class
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        assert not inspect.iscoroutinefunction(member) and inspect.iscoroutinefunction(twin), name
        unreturned = [inspect.signature(f).replace(return_annotation=inspect.Signature.empty) for f in (member, twin)]
        assert unreturned[0] == unreturned[1], name
        assert member.__doc__ and member.__doc__ == twin.__doc__, name


def test_both_clients_share_construction() -> None:
    assert OmniClient.__init__ is AsyncOmniClient.__init__ and OmniClient.with_options is AsyncOmniClient.with_options


def test_a_misspelt_argument_names_the_valid_ones() -> None:
    # Nothing listens there: an InvalidRequestError (not a connection error) shows nothing was sent.
    async def main() -> None:
        async with AsyncOmniClient(f"http://127.0.0.1:{free_port()}", max_retries=0) as client:
            await client.speak("hi", vocie="x")  # type: ignore[call-arg]

    with pytest.raises(InvalidRequestError, match=r"speak\(\) takes no 'vocie'; valid names: text, voice, "):
        run(main)
