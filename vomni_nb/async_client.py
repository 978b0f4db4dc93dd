"""AsyncOmniClient: the async twin of OmniClient over httpx.AsyncClient.

Same plans, same retries, same errors, same signatures (a test holds them identical); only the loop
that performs the steps differs. Cancelling the task (CancelledError) closes the connection at once,
so the server aborts the request. Method docstrings are OmniClient's (see ``share_docstrings``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import httpx

from vomni_nb import _plans
from vomni_nb._base_client import BaseClient, call_arguments, share_docstrings
from vomni_nb._core import Failure, Plan, Reply, Sleep, Stepper
from vomni_nb._transport import build_http_request, reply_from, transport_outcome_error
from vomni_nb.client import OmniClient, Voices
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.protocol.media import MediaSource
from vomni_nb.protocol.validate import ImageFormat, ImageRoute, Modality, SpeechFormat, SpeechStreamMode, \
    StreamingSpeechFormat
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult, VideoResult
from vomni_nb.streams import AsyncChatStream, AsyncSpeechStream

__all__ = ["AsyncOmniClient", "AsyncVoices"]

T = TypeVar("T")


class AsyncOmniClient(BaseClient[httpx.AsyncBaseTransport, Callable[[float], Awaitable[None]]]):
    """The async twin of :class:`~vomni_nb.client.OmniClient`: the same constructor, and the same
    methods as coroutines (``await client.image(...)``; ``async with AsyncOmniClient(url) as client``).
    ``sleep`` is a coroutine function (default ``asyncio.sleep``)."""

    _http: httpx.AsyncClient

    def _default_sleep(self) -> Callable[[float], Awaitable[None]]:
        return asyncio.sleep

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, transport=self._transport)

    async def close(self) -> None:
        """Close the connections (a copy from ``with_options`` shares them)."""
        await self._http.aclose()

    async def aclose(self) -> None:
        """The same as :meth:`close` (the name asyncio code expects)."""
        await self.close()

    async def __aenter__(self) -> AsyncOmniClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _perform(self, spec: RequestSpec) -> Reply | Failure:
        request = build_http_request(self._http, self._core, spec, self._timeout)
        url = self._core.base_url + spec.path
        started = time.perf_counter()
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        if spec.stream and response.status_code < 400:
            return reply_from(response, request, b"", started, stream=True)
        try:
            content = await response.aread()
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        finally:
            await response.aclose()
        return reply_from(response, request, content, started)

    async def _run(self, plan: Plan[T]) -> T:
        stepper = Stepper(plan)
        for step in stepper:
            try:
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                else:
                    stepper.outcome = await self._perform(step.spec)
            except BaseException as exc:  # noqa: BLE001 - thrown into the plan, which re-raises
                stepper.error = exc
        return cast(T, stepper.value)

    async def _sweep(self, prompt: str, jobs: list[dict[str, Any]], options: Mapping[str, Any],
                     concurrency: int) -> ImageBatch:
        """One image() per job, ``concurrency`` at a time, in the jobs' order (a sync sweep runs this too)."""
        gate = asyncio.Semaphore(concurrency)

        async def one(job: dict[str, Any]) -> ImageResult | ImageBatch:
            async with gate:
                return await self.image(prompt, **{**options, **job})

        outputs = await asyncio.gather(*(one(job) for job in jobs))
        return ImageBatch(tuple(image for output in outputs
                                for image in (output.images if isinstance(output, ImageBatch) else (output,))))

    async def image(
        self,
        prompt: str,
        *,
        size: str | tuple[int, int] | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        negative: str | None = None,
        n: int = 1,
        output_format: ImageFormat = "png",
        via: ImageRoute = "images",
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | None = None,
    ) -> ImageResult | ImageBatch:
        return await self._run(_plans.image_plan(self._core, **call_arguments(locals())))

    async def images(
        self,
        prompt: str,
        *,
        seeds: Sequence[int] | None = None,
        grid: _plans.Grid | None = None,
        concurrency: int = 4,
        size: str | tuple[int, int] | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        negative: str | None = None,
        n: int = 1,
        output_format: ImageFormat = "png",
        via: ImageRoute = "images",
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | None = None,
    ) -> ImageBatch:
        options = call_arguments(locals(), "prompt", "seeds", "grid", "concurrency")
        jobs = self._sweep_jobs(seeds, grid, concurrency, options)
        return await self._sweep(prompt, jobs, options, concurrency)

    async def edit(
        self,
        image: MediaSource | Sequence[MediaSource],
        prompt: str,
        *,
        size: str | tuple[int, int] | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        negative: str | None = None,
        n: int = 1,
        output_format: ImageFormat = "png",
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | None = None,
    ) -> ImageResult | ImageBatch:
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        return await self._run(_plans.edit_plan(self._core, images=images,
                                                **call_arguments(locals(), "image", "images")))

    async def chat(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None = None,
        images: MediaSource | Sequence[MediaSource] = (),
        audio: MediaSource | Sequence[MediaSource] = (),
        modalities: Sequence[Modality] | str | None = None,
        voice: str | None = None,
        audio_format: SpeechFormat | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        return await self._run(_plans.chat_plan(self._core, **call_arguments(locals())))

    async def chat_stream(
        self,
        prompt: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None = None,
        images: MediaSource | Sequence[MediaSource] = (),
        audio: MediaSource | Sequence[MediaSource] = (),
        modalities: Sequence[Modality] | str | None = None,
        voice: str | None = None,
        audio_format: SpeechFormat | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AsyncChatStream:
        reply, state, started = await self._run(_plans.chat_stream_plan(self._core, **call_arguments(locals())))
        return AsyncChatStream(reply, state, started=started, url=self.base_url)

    async def speak(
        self,
        text: str,
        *,
        voice: str | None = None,
        response_format: SpeechFormat = "wav",
        speed: float | None = None,
        instructions: str | None = None,
        language: str | None = None,
        sample_rate: int | None = None,
        seed: int | None = None,
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> SpeechResult:
        return await self._run(_plans.speech_plan(self._core, **call_arguments(locals())))

    async def speak_stream(
        self,
        text: str,
        *,
        mode: SpeechStreamMode = "audio",
        voice: str | None = None,
        response_format: StreamingSpeechFormat = "wav",
        speed: float | None = None,
        instructions: str | None = None,
        language: str | None = None,
        sample_rate: int | None = None,
        seed: int | None = None,
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> AsyncSpeechStream:
        reply, state, started = await self._run(_plans.speech_stream_plan(self._core, **call_arguments(locals())))
        return AsyncSpeechStream(reply, state, started=started, url=self.base_url)

    async def video(
        self,
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
        on_progress: _plans.ProgressCallback | None = None,
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | None = None,
    ) -> VideoResult:
        return await self._run(_plans.video_plan(self._core, **call_arguments(locals())))

    async def cancel_video(self, job_id: str) -> dict[str, Any]:
        return await self._run(_plans.cancel_video_plan(self._core, job_id))

    async def video_jobs(self, *, limit: int = 20, order: Literal["asc", "desc"] = "desc") -> list[dict[str, Any]]:
        return await self._run(_plans.video_jobs_plan(self._core, limit, order))

    @property
    def voices(self) -> AsyncVoices:
        """List, upload (with the speaker's consent) and delete named voices."""
        return AsyncVoices(self)

    async def models(self) -> list[str]:
        return await self._run(_plans.models_plan(self._core))

    async def health(self) -> dict[str, Any]:
        return await self._run(_plans.health_plan(self._core))

    async def version(self) -> str:
        return await self._run(_plans.version_plan(self._core))


class AsyncVoices:
    """``client.voices`` of the async client."""

    def __init__(self, client: AsyncOmniClient) -> None:
        self._client = client

    async def list(self) -> dict[str, Any]:
        return await self._client._run(_plans.voices_list_plan(self._client._core))

    async def upload(self, name: str, audio: MediaSource, *, consent: str, ref_text: str | None = None,
                     speaker_description: str | None = None) -> dict[str, Any]:
        return await self._client._run(_plans.voice_upload_plan(self._client._core, **call_arguments(locals())))

    async def delete(self, name: str) -> dict[str, Any]:
        return await self._client._run(_plans.voice_delete_plan(self._client._core, name))


share_docstrings(AsyncOmniClient, OmniClient)
share_docstrings(AsyncVoices, Voices)
