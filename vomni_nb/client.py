"""OmniClient: every vLLM-Omni capability from plain (synchronous) Python.

Safe inside a running event loop (a Jupyter cell): it uses httpx's sync client and never calls
``asyncio.run`` or patches asyncio; concurrent sweeps run on a private event loop in a background
thread. Each method is a plan (written once, with its signature and docstring, in ``_plans``,
``_video_plans`` or ``_service_plans``) run by this client's blocking send loop;
:mod:`vomni_nb.async_client` runs the same plans with ``await``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import httpx

from vomni_nb import _plans, _service_plans, _speech_plans, _video_plans
from vomni_nb._base_client import BaseClient, BaseVoices, capability_method, checked
from vomni_nb._core import ClientCore, Failure, Gather, Plan, Reply, Sleep, Step, Stepper
from vomni_nb._recording import Record
from vomni_nb._transport import Exchange, new_transport, run_on_private_loop
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.streams import ChatStream, SpeechStream

__all__ = ["OmniClient", "Voices"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")


def blocking(plan: Callable[Concatenate[ClientCore, P], Plan[T]]) -> Callable[Concatenate[Any, P], T]:
    """A method that runs ``plan`` to its end and returns what it gives."""
    start = checked(plan)

    def run_capability(self: Any, *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, self._run(self._recording(start(self._core, *args, **kwargs)).plan))

    return capability_method(run_capability, plan)


def blocking_stream(plan: Callable[Concatenate[ClientCore, P], Plan[_plans.OpenedStream]],
                    stream: Callable[..., S]) -> Callable[Concatenate[Any, P], S]:
    """A method that runs ``plan`` until the answer begins and returns it as a ``stream`` to iterate."""
    start = checked(plan)

    def run_capability(self: Any, *args: P.args, **kwargs: P.kwargs) -> S:
        recording = self._recording(start(self._core, *args, **kwargs))
        opened = self._run(recording.plan)
        return stream(opened.reply, recording.stream_state(opened.state), started=opened.started,
                      url=self._core.base_url)

    return capability_method(run_capability, plan, returns=stream.__name__)


class OmniClient(BaseClient[httpx.BaseTransport, Callable[[float], None]]):
    """A client for one vLLM-Omni (or vomni-sim) server, from plain Python (a notebook cell included).

    ``OmniClient("http://127.0.0.1:8091")``, ``OmniClient(base_url=...)`` or ``OmniClient(server)``
    with a Server handle. The API key comes from ``api_key``, the handle, ``VOMNI_API_KEY`` or
    ``VLLM_API_KEY`` and never appears in a repr, a log line or an error. ``model`` is sent with every
    request (leave it unset to use the server's own). ``timeout``: seconds or an ``httpx.Timeout``
    (default 10 s to connect, 600 s to read): the read part bounds each request's *whole* answer, and
    the wait for a stream's next event, so a server that trickles bytes cannot hold a call.
    ``limits`` (:class:`~vomni_nb.protocol.limits.Limits`) bounds what a server may send: body sizes,
    decompression, stream text and lines, a stream's duration. ``max_retries`` bounds the safe retries
    (503, 429, refused connections). ``history``: where every result (and failure) is recorded: None
    for the default history (``VOMNI_HISTORY``, else the user cache dir), a ``HistoryStore``, or False
    for none. ``transport`` and ``sleep`` exist for tests.
    """

    _http: httpx.Client

    image = blocking(_plans.image)
    images = blocking(_plans.images)
    edit = blocking(_plans.edit)
    chat = blocking(_plans.chat)
    chat_stream = blocking_stream(_plans.chat_stream, ChatStream)
    speak = blocking(_speech_plans.speak)
    speak_stream = blocking_stream(_speech_plans.speak_stream, SpeechStream)
    speak_batch = blocking(_speech_plans.speak_batch)
    video = blocking(_video_plans.video)
    wait_video = blocking(_video_plans.wait_video)
    download_video = blocking(_video_plans.download_video)
    cancel_video = blocking(_video_plans.cancel_video)
    video_jobs = blocking(_video_plans.video_jobs)
    models = blocking(_service_plans.models)
    health = blocking(_service_plans.health)
    version = blocking(_service_plans.version)

    @property
    def voices(self) -> Voices:
        """List, upload (with the speaker's consent) and delete named voices."""
        return Voices(self)

    def close(self) -> None:
        """Close the connections (a copy from ``with_options`` shares them)."""
        self._http.close()

    def __enter__(self) -> OmniClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _default_sleep(self) -> Callable[[float], None]:
        return time.sleep

    def _new_http(self) -> httpx.Client:
        return httpx.Client(timeout=self._timeout, transport=self._transport or new_transport())

    def _perform(self, spec: RequestSpec) -> Reply | Failure:
        exchange = Exchange(self._http, self._core, spec, self._timeout)
        with exchange.failures():
            response = self._http.send(exchange.request, stream=True)
            return exchange.reply(response, b"" if exchange.streams(response) else exchange.read(response))
        assert exchange.failure is not None
        return exchange.failure

    def _gather(self, step: Gather) -> list[Any]:
        """Concurrent plans from sync code: on a private event loop, through an async twin of this client."""
        from vomni_nb.async_client import AsyncOmniClient

        async def gather() -> list[Any]:
            # The twin shares this client's core: its settings, and what either learns about the server.
            async with AsyncOmniClient._from_core(self._core, self._timeout, history=self._history) as twin:
                return await twin._gather(step)

        return run_on_private_loop(gather())

    def _run(self, plan: Plan[T]) -> T:
        """Perform a plan's steps; an exception while performing one (Ctrl-C included) is thrown into it."""
        stepper = Stepper(plan, (self._core.api_key,))
        for step in stepper:
            with stepper.performing():
                stepper.outcome = self._perform_step(step)
        return stepper.result()

    def _perform_step(self, step: Step | Record) -> Any:
        if isinstance(step, Record):
            return step.action()  # history I/O, in line
        if isinstance(step, Sleep):
            self._sleep(step.seconds)
            return None
        return self._gather(step) if isinstance(step, Gather) else self._perform(step.spec)


class Voices(BaseVoices):
    __doc__ = BaseVoices.__doc__

    list = blocking(_service_plans.list_voices)
    upload = blocking(_service_plans.upload_voice)
    delete = blocking(_service_plans.delete_voice)
