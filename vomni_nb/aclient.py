"""AsyncOmniClient: the async twin of OmniClient over httpx.AsyncClient.

Same plans, same retries, same errors; only the loop that performs the steps differs. Cancelling
the task (CancelledError) closes the connection at once, so the server aborts the request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx

from vomni_nb import plans
from vomni_nb.client import DEFAULT_TIMEOUT, transport_outcome_error
from vomni_nb.clientcore import ClientCore, Failure, Outcome, Plan, Reply, Send, Sleep, T
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.build import MediaSource
from vomni_nb.protocol.retry import RetryPolicy
from vomni_nb.results import ChatResult, ImageBatch, SpeechResult, VideoResult
from vomni_nb.streams import AsyncChatStream, AsyncSpeechStream

__all__ = ["AsyncOmniClient"]


class AsyncOmniClient:
    """Async client for one vLLM-Omni (or vomni-sim) server; see :class:`vomni_nb.client.OmniClient`."""

    def __init__(
        self,
        server: Any = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._core = ClientCore(server, base_url=base_url, api_key=api_key, model=model, max_retries=max_retries,
                                retry_policy=retry_policy)
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._http = httpx.AsyncClient(timeout=self._timeout, transport=transport)
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def model(self) -> str | None:
        """The model of the results (given, from the Server handle, or learned from the server)."""
        return self._core.provenance_model

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def close(self) -> None:
        await self.aclose()

    async def __aenter__(self) -> AsyncOmniClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _perform(self, spec: Any) -> Reply | Failure:
        url, headers = self._core.url_and_headers(spec)
        request = self._http.build_request(spec.method, url, json=spec.json, content=spec.content, params=spec.params,
                                           headers=headers)
        started = time.perf_counter()
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        if spec.stream and response.status_code < 400:
            return Reply(response.status_code, response.headers, b"", time.perf_counter() - started, stream=response)
        try:
            content = await response.aread()
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, content, time.perf_counter() - started)

    async def _run(self, plan: Plan[T]) -> T:
        outcome: Outcome = None
        pending: BaseException | None = None
        while True:
            try:
                step = plan.throw(pending) if pending is not None else plan.send(outcome)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            pending = None
            try:
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    outcome = None
                else:
                    assert isinstance(step, Send)
                    outcome = await self._perform(step.spec)
            except BaseException as exc:  # noqa: BLE001 - handed to the plan, which re-raises
                pending = exc

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
        output_format: str = "png",
        via: str = "images",
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Any:
        return await self._run(plans.image_plan(self._core, prompt, via=via, seed=seed, n=n, size=size, steps=steps,
                                                guidance=guidance, negative=negative, output_format=output_format,
                                                model=model, extra=extra))

    async def images(
        self,
        prompt: str,
        *,
        seeds: Sequence[int] | None = None,
        grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | None = None,
        concurrency: int = 4,
        **options: Any,
    ) -> ImageBatch:
        seed = options.pop("seed", None)
        if seed is not None:
            # seed=3 with a grid means "this one seed for every cell", not a random one.
            if seeds is not None:
                raise InvalidRequestError("Give seed= (one seed for the whole grid) or seeds= (a sweep), not both.")
            seeds = [seed]
        jobs = plans.sweep_jobs(seeds, grid)
        if concurrency < 1:
            raise InvalidRequestError("concurrency must be at least 1.")
        gate = asyncio.Semaphore(concurrency)

        async def one(job: dict[str, Any]) -> Any:
            async with gate:
                return await self.image(prompt, **{**options, **job})

        return plans.flatten_images(await asyncio.gather(*(one(job) for job in jobs)))

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
        output_format: str = "png",
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Any:
        sources = list(image) if isinstance(image, (list, tuple)) else [image]
        return await self._run(plans.edit_plan(self._core, prompt, sources, seed=seed, n=n, size=size, steps=steps,
                                               guidance=guidance, negative=negative, output_format=output_format,
                                               model=model, extra=extra))

    async def chat(self, prompt: str | Sequence[Mapping[str, Any]], **options: Any) -> ChatResult:
        return await self._run(plans.chat_plan(self._core, prompt, **options))

    async def chat_stream(self, prompt: str | Sequence[Mapping[str, Any]], **options: Any) -> AsyncChatStream:
        reply, state, started = await self._run(plans.chat_stream_plan(self._core, prompt, **options))
        return AsyncChatStream(reply, state, sse=True, started=started, url=self.base_url)

    async def speak(self, text: str, **options: Any) -> SpeechResult:
        return await self._run(plans.speech_plan(self._core, text, **options))

    async def speak_stream(self, text: str, *, mode: str = "audio", **options: Any) -> AsyncSpeechStream:
        reply, state, started = await self._run(plans.speech_stream_plan(self._core, text, mode=mode, **options))
        return AsyncSpeechStream(reply, state, sse=mode == "sse", started=started, url=self.base_url)

    async def video(self, prompt: str, **options: Any) -> VideoResult:
        return await self._run(plans.video_plan(self._core, prompt, **options))

    async def cancel_video(self, job_id: str) -> dict[str, Any]:
        return await self._run(plans.cancel_video_plan(self._core, job_id))

    async def video_jobs(self, *, limit: int = 20, order: str = "desc") -> list[dict[str, Any]]:
        body = await self._run(plans.get_json_plan(self._core, "/v1/videos", {"limit": limit, "order": order}))
        return list(body.get("data", [])) if isinstance(body, dict) else []

    @property
    def voices(self) -> AsyncVoices:
        return AsyncVoices(self)

    async def models(self) -> list[str]:
        return await self._run(plans.models_plan(self._core))

    async def health(self) -> dict[str, Any]:
        return await self._run(plans.health_plan(self._core))

    async def version(self) -> str:
        return await self._run(plans.version_plan(self._core))


class AsyncVoices:
    def __init__(self, client: AsyncOmniClient) -> None:
        self._client = client

    async def list(self) -> dict[str, Any]:
        return await self._client._run(plans.voices_list_plan(self._client._core))

    async def upload(self, name: str, audio: MediaSource, *, consent: str, ref_text: str | None = None,
                     speaker_description: str | None = None) -> dict[str, Any]:
        return await self._client._run(plans.voice_upload_plan(self._client._core, name, audio, consent=consent,
                                                               ref_text=ref_text,
                                                               speaker_description=speaker_description))

    async def delete(self, name: str) -> dict[str, Any]:
        return await self._client._run(plans.voice_delete_plan(self._client._core, name))
