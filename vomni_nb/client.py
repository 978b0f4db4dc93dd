"""OmniClient: every vLLM-Omni capability from plain (synchronous) Python.

Safe inside a running event loop (a Jupyter cell): it uses httpx's sync client and never calls
``asyncio.run`` or patches asyncio; concurrent sweeps run on a private event loop in a background
thread. See :mod:`vomni_nb.aclient` for the async twin; both run the same plans (:mod:`vomni_nb.plans`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import httpx

from vomni_nb import plans
from vomni_nb.clientcore import ClientCore, Failure, Outcome, Plan, Reply, Send, Sleep, T
from vomni_nb.errors import APIConnectionError, InvalidRequestError, redact
from vomni_nb.protocol.build import MediaSource
from vomni_nb.protocol.retry import RetryPolicy
from vomni_nb.protocol.status import connection_error, timeout_error
from vomni_nb.results import ChatResult, ImageBatch, SpeechResult, VideoResult
from vomni_nb.streams import ChatStream, SpeechStream

__all__ = ["OmniClient", "DEFAULT_TIMEOUT", "transport_outcome_error"]

CANCEL_GRACE_S = 2.0  # how long an interrupted sweep waits for its requests to close

# Generations take long on real GPUs: a short connect timeout, a long read timeout.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def transport_outcome_error(exc: httpx.TransportError, core: ClientCore, url: str, timeout: httpx.Timeout) -> Failure:
    """Classify a transport failure: did anything reach the server (only then is resending unsafe)?"""
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        detail = "connection refused" if "refused" in text.lower() else redact(text, core.api_key) or type(exc).__name__
        return Failure(connection_error(core.base_url, detail), before_send=True)
    if isinstance(exc, httpx.ConnectTimeout):
        return Failure(timeout_error(url, timeout.connect), before_send=True)
    if isinstance(exc, httpx.TimeoutException):
        return Failure(timeout_error(url, timeout.read), before_send=False)
    message = f"The connection to {url} failed mid-request ({type(exc).__name__}: {redact(str(exc), core.api_key)}). "
    return Failure(APIConnectionError(message + "Check the server with `%omni_server status`.", url=url), before_send=False)


def run_on_private_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a new event loop in a daemon thread and wait for it.

    An exception in the waiting thread (KeyboardInterrupt) cancels the coroutine and waits briefly
    for its cleanup, so its connections are closed before the exception propagates.
    """
    finished = threading.Event()

    async def tracked() -> T:
        try:
            return await coroutine
        finally:
            # Runs only after the coroutine's own cleanup (closing its connections) is done.
            finished.set()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vomni-sweep-loop", daemon=True)
    thread.start()
    future = asyncio.run_coroutine_threadsafe(tracked(), loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        finished.wait(CANCEL_GRACE_S)
        raise
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CANCEL_GRACE_S)
        if not thread.is_alive():
            loop.close()


class OmniClient:
    """A client for one vLLM-Omni (or vomni-sim) server.

    ``OmniClient("http://127.0.0.1:8091")``, ``OmniClient(base_url=...)`` or ``OmniClient(server)`` with a
    Server handle. The API key comes from ``api_key``, the handle, ``VOMNI_API_KEY`` or ``VLLM_API_KEY``
    and never appears in a repr or an error. ``sleep`` and ``transport`` exist for tests.
    """

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
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._core = ClientCore(server, base_url=base_url, api_key=api_key, model=model, max_retries=max_retries,
                                retry_policy=retry_policy)
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._transport = transport
        self._http = httpx.Client(timeout=self._timeout, transport=transport)
        self._sleep = sleep

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def model(self) -> str | None:
        """The model of the results (given, from the Server handle, or learned from the server)."""
        return self._core.provenance_model

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OmniClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _perform(self, spec: Any) -> Reply | Failure:
        url, headers = self._core.url_and_headers(spec)
        request = self._http.build_request(spec.method, url, json=spec.json, content=spec.content, params=spec.params,
                                           headers=headers)
        started = time.perf_counter()
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        if spec.stream and response.status_code < 400:
            return Reply(response.status_code, response.headers, b"", time.perf_counter() - started, stream=response)
        try:
            content = response.read()
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        finally:
            response.close()
        return Reply(response.status_code, response.headers, content, time.perf_counter() - started)

    def _run(self, plan: Plan[T]) -> T:
        """Perform a plan's steps; an exception while performing one (Ctrl-C included) is thrown into it."""
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
                    self._sleep(step.seconds)
                    outcome = None
                else:
                    assert isinstance(step, Send)
                    outcome = self._perform(step.spec)
            except BaseException as exc:  # noqa: BLE001 - handed to the plan, which re-raises
                pending = exc

    # -- capabilities -----------------------------------------------------------------------

    def image(
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
        """Text to image. Returns an ImageResult (an ImageBatch when n > 1). The seed is chosen here when not given."""
        return self._run(plans.image_plan(self._core, prompt, via=via, seed=seed, n=n, size=size, steps=steps,
                                          guidance=guidance, negative=negative, output_format=output_format,
                                          model=model, extra=extra))

    def images(
        self,
        prompt: str,
        *,
        seeds: Sequence[int] | None = None,
        grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | None = None,
        concurrency: int = 4,
        **options: Any,
    ) -> ImageBatch:
        """A sweep: one image per seed x grid combination, ``concurrency`` requests at a time.

        The requests run on a private event loop in a background thread (never ``asyncio.run`` in the
        caller's loop, so this works in a Jupyter cell); Ctrl-C cancels them all and closes their connections.
        """
        plans.sweep_jobs(seeds, grid)  # validate before starting anything
        if concurrency < 1:
            raise InvalidRequestError("concurrency must be at least 1.")
        from vomni_nb.aclient import AsyncOmniClient

        async def sweep() -> ImageBatch:
            async with AsyncOmniClient(base_url=self.base_url, api_key=self._core.api_key, model=self._core.model,
                                       timeout=self._timeout, retry_policy=self._core.policy) as client:
                client._core.provenance_model = self._core.provenance_model
                client._core.served_models = self._core.served_models
                return await client.images(prompt, seeds=seeds, grid=grid, concurrency=concurrency, **options)

        return run_on_private_loop(sweep())

    def edit(
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
        """Edit an image (bytes, path or result; or a list of them) following ``prompt``."""
        sources = list(image) if isinstance(image, (list, tuple)) else [image]
        return self._run(plans.edit_plan(self._core, prompt, sources, seed=seed, n=n, size=size, steps=steps,
                                         guidance=guidance, negative=negative, output_format=output_format,
                                         model=model, extra=extra))

    def chat(self, prompt: str | Sequence[Mapping[str, Any]], **options: Any) -> ChatResult:
        """One chat answer. Options: system, images, audio, modalities, voice, audio_format, max_tokens,
        temperature, seed, model, extra."""
        return self._run(plans.chat_plan(self._core, prompt, **options))

    def chat_stream(self, prompt: str | Sequence[Mapping[str, Any]], **options: Any) -> ChatStream:
        """A streamed chat answer: iterate for TextDelta / AudioDelta / ImageDelta events."""
        reply, state, started = self._run(plans.chat_stream_plan(self._core, prompt, **options))
        return ChatStream(reply, state, sse=True, started=started, url=self.base_url)

    def speak(self, text: str, **options: Any) -> SpeechResult:
        """Text to speech. Options: voice, response_format (wav|pcm|flac|mp3|opus), speed, instructions,
        language, sample_rate, seed, model, extra."""
        return self._run(plans.speech_plan(self._core, text, **options))

    def speak_stream(self, text: str, *, mode: str = "audio", **options: Any) -> SpeechStream:
        """Streamed speech (wav or pcm): ``mode="audio"`` raw bytes, ``mode="sse"`` events."""
        reply, state, started = self._run(plans.speech_stream_plan(self._core, text, mode=mode, **options))
        return SpeechStream(reply, state, sse=mode == "sse", started=started, url=self.base_url)

    def video(self, prompt: str, **options: Any) -> VideoResult:
        """Create a video job, poll it (``on_progress(job)`` each time), download the MP4.

        Options: size, seconds, fps, num_frames, steps, guidance, negative, seed, image, poll_interval,
        timeout, on_progress, model, extra. Ctrl-C cancels the job on the server (DELETE).
        """
        return self._run(plans.video_plan(self._core, prompt, **options))

    def cancel_video(self, job_id: str) -> dict[str, Any]:
        return self._run(plans.cancel_video_plan(self._core, job_id))

    def video_jobs(self, *, limit: int = 20, order: str = "desc") -> list[dict[str, Any]]:
        body = self._run(plans.get_json_plan(self._core, "/v1/videos", {"limit": limit, "order": order}))
        return list(body.get("data", [])) if isinstance(body, dict) else []

    @property
    def voices(self) -> Voices:
        return Voices(self)

    def models(self) -> list[str]:
        return self._run(plans.models_plan(self._core))

    def health(self) -> dict[str, Any]:
        return self._run(plans.health_plan(self._core))

    def version(self) -> str:
        return self._run(plans.version_plan(self._core))


class Voices:
    """``client.voices``: list, upload (with the speaker's consent) and delete named voices."""

    def __init__(self, client: OmniClient) -> None:
        self._client = client

    def list(self) -> dict[str, Any]:
        return self._client._run(plans.voices_list_plan(self._client._core))

    def upload(self, name: str, audio: MediaSource, *, consent: str, ref_text: str | None = None,
               speaker_description: str | None = None) -> dict[str, Any]:
        return self._client._run(plans.voice_upload_plan(self._client._core, name, audio, consent=consent,
                                                         ref_text=ref_text, speaker_description=speaker_description))

    def delete(self, name: str) -> dict[str, Any]:
        return self._client._run(plans.voice_delete_plan(self._client._core, name))
