"""AsyncOmniClient: the async twin of OmniClient over httpx.AsyncClient.

The same plans (so the same signatures, docstrings, retries and errors; a test holds them
identical), run by an ``await``-ing send loop. Cancelling the task (CancelledError) closes the
connection at once, so the server aborts the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import httpx

from vomni_nb import _plans, _service_plans, _speech_plans, _video_plans
from vomni_nb._base_client import BaseClient, BaseVoices, capability_method, checked
from vomni_nb._core import ClientCore, Failure, Gather, Plan, Reply, Sleep, Step, Stepper
from vomni_nb._recording import Record
from vomni_nb._transport import Exchange, new_async_transport
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.streams import AsyncChatStream, AsyncSpeechStream

__all__ = ["AsyncOmniClient", "AsyncVoices"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


def awaitable(plan: Callable[Concatenate[ClientCore, P], Plan[T]]) -> Callable[Concatenate[Any, P],
                                                                                Coroutine[Any, Any, T]]:
    """A coroutine method that runs ``plan`` to its end and returns what it gives."""
    start = checked(plan)

    async def run_capability(self: Any, *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, await self._run(self._recording(start(self._core, *args, **kwargs)).plan))

    return capability_method(run_capability, plan)


def awaitable_stream(plan: Callable[Concatenate[ClientCore, P], Plan[_plans.OpenedStream]],
                     stream: Callable[..., S]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, S]]:
    """A coroutine method that runs ``plan`` until the answer begins and returns it as a ``stream``."""
    start = checked(plan)

    async def run_capability(self: Any, *args: P.args, **kwargs: P.kwargs) -> S:
        recording = self._recording(start(self._core, *args, **kwargs))
        opened = await self._run(recording.plan)
        return stream(opened.reply, recording.stream_state(opened.state), started=opened.started,
                      url=self._core.base_url)

    return capability_method(run_capability, plan, returns=stream.__name__)


class AsyncOmniClient(BaseClient[httpx.AsyncBaseTransport, Callable[[float], Awaitable[None]]]):
    """The async twin of :class:`~vomni_nb.client.OmniClient`: the same constructor, and the same
    methods as coroutines (``await client.image(...)``; ``async with AsyncOmniClient(url) as client``).
    ``sleep`` is a coroutine function (default ``asyncio.sleep``)."""

    _http: httpx.AsyncClient

    image = awaitable(_plans.image)
    images = awaitable(_plans.images)
    edit = awaitable(_plans.edit)
    chat = awaitable(_plans.chat)
    chat_stream = awaitable_stream(_plans.chat_stream, AsyncChatStream)
    speak = awaitable(_speech_plans.speak)
    speak_stream = awaitable_stream(_speech_plans.speak_stream, AsyncSpeechStream)
    speak_batch = awaitable(_speech_plans.speak_batch)
    video = awaitable(_video_plans.video)
    wait_video = awaitable(_video_plans.wait_video)
    download_video = awaitable(_video_plans.download_video)
    cancel_video = awaitable(_video_plans.cancel_video)
    video_jobs = awaitable(_video_plans.video_jobs)
    models = awaitable(_service_plans.models)
    health = awaitable(_service_plans.health)
    version = awaitable(_service_plans.version)

    @property
    def voices(self) -> AsyncVoices:
        """List, upload (with the speaker's consent) and delete named voices."""
        return AsyncVoices(self)

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

    def _default_sleep(self) -> Callable[[float], Awaitable[None]]:
        return asyncio.sleep

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, transport=self._transport or new_async_transport())

    async def _perform(self, spec: RequestSpec) -> Reply | Failure:
        exchange = Exchange(self._http, self._core, spec, self._timeout)
        with exchange.failures():
            response = await self._http.send(exchange.request, stream=True)
            return exchange.reply(response, b"" if exchange.streams(response) else await exchange.aread(response))
        assert exchange.failure is not None
        return exchange.failure

    async def _gather(self, step: Gather) -> list[Any]:
        """The plans of ``step`` as tasks, at most ``step.concurrency`` at a time, results in order."""
        gate = asyncio.Semaphore(step.concurrency)

        async def one(plan: Plan[Any]) -> Any:
            async with gate:
                if not step.settle:
                    return await self._run(plan)
                try:
                    return await self._run(plan)
                except Exception as exc:  # settled: the plan's own failure is its outcome, in its place
                    return exc

        return list(await asyncio.gather(*(one(plan) for plan in step.plans)))

    async def _run(self, plan: Plan[T]) -> T:
        stepper = Stepper(plan, (self._core.api_key,))
        for step in stepper:
            with stepper.performing():
                stepper.outcome = await self._perform_step(step)
        return stepper.result()

    async def _perform_step(self, step: Step | Record) -> Any:
        if isinstance(step, Record):
            return await asyncio.to_thread(step.action)  # history I/O (SQLite, fsync): off the event loop
        if isinstance(step, Sleep):
            await self._sleep(step.seconds)
            return None
        return await (self._gather(step) if isinstance(step, Gather) else self._perform(step.spec))


class AsyncVoices(BaseVoices):
    __doc__ = BaseVoices.__doc__

    list = awaitable(_service_plans.list_voices)
    upload = awaitable(_service_plans.upload_voice)
    delete = awaitable(_service_plans.delete_voice)
