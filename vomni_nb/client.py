"""OmniClient: every vLLM-Omni capability from plain (synchronous) Python.

Safe inside a running event loop (a Jupyter cell): it uses httpx's sync client and never calls
``asyncio.run`` or patches asyncio; concurrent sweeps run on a private event loop in a background
thread. :mod:`vomni_nb.async_client` has the async twin; both run the same plans
(:mod:`vomni_nb._plans`) and share everything but the send loop (:mod:`vomni_nb._base_client`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import httpx

from vomni_nb import _plans
from vomni_nb._base_client import BaseClient, call_arguments
from vomni_nb._core import Failure, Plan, Reply, Sleep, Stepper
from vomni_nb._transport import build_http_request, reply_from, run_on_private_loop, transport_outcome_error
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.protocol.media import MediaSource
from vomni_nb.protocol.validate import ImageFormat, ImageRoute, Modality, SpeechFormat, SpeechStreamMode, \
    StreamingSpeechFormat
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult, VideoResult
from vomni_nb.streams import ChatStream, SpeechStream

__all__ = ["OmniClient", "Voices"]

T = TypeVar("T")


class OmniClient(BaseClient[httpx.BaseTransport, Callable[[float], None]]):
    """A client for one vLLM-Omni (or vomni-sim) server, from plain Python (a notebook cell included).

    ``OmniClient("http://127.0.0.1:8091")``, ``OmniClient(base_url=...)`` or ``OmniClient(server)``
    with a Server handle. The API key comes from ``api_key``, the handle, ``VOMNI_API_KEY`` or
    ``VLLM_API_KEY`` and never appears in a repr, a log line or an error. ``model`` is sent with every
    request (leave it unset to use the server's own). ``timeout``: seconds or an ``httpx.Timeout``
    (default 10 s to connect, 600 s to read); ``max_retries`` bounds the safe retries (503, 429,
    refused connections). ``transport`` and ``sleep`` exist for tests.
    """

    _http: httpx.Client

    def _default_sleep(self) -> Callable[[float], None]:
        return time.sleep

    def _new_http(self) -> httpx.Client:
        return httpx.Client(timeout=self._timeout, transport=self._transport)

    def close(self) -> None:
        """Close the connections (a copy from ``with_options`` shares them)."""
        self._http.close()

    def __enter__(self) -> OmniClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _perform(self, spec: RequestSpec) -> Reply | Failure:
        request = build_http_request(self._http, self._core, spec, self._timeout)
        url = self._core.base_url + spec.path
        started = time.perf_counter()
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        if spec.stream and response.status_code < 400:
            return reply_from(response, request, b"", started, stream=True)
        try:
            content = response.read()
        except httpx.TransportError as exc:
            return transport_outcome_error(exc, self._core, url, self._timeout)
        finally:
            response.close()
        return reply_from(response, request, content, started)

    def _run(self, plan: Plan[T]) -> T:
        """Perform a plan's steps; an exception while performing one (Ctrl-C included) is thrown into it."""
        stepper = Stepper(plan)
        for step in stepper:
            try:
                if isinstance(step, Sleep):
                    self._sleep(step.seconds)
                else:
                    stepper.outcome = self._perform(step.spec)
            except BaseException as exc:  # noqa: BLE001 - thrown into the plan, which re-raises
                stepper.error = exc
        return cast(T, stepper.value)

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
        output_format: ImageFormat = "png",
        via: ImageRoute = "images",
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | None = None,
    ) -> ImageResult | ImageBatch:
        """Text to image: an ImageResult (an ImageBatch when ``n`` > 1).

        ``size`` "WIDTHxHEIGHT" or (width, height); ``steps`` denoising steps; ``guidance`` CFG scale;
        ``negative`` what to avoid; ``seed`` (chosen here when not given, so the result records it);
        ``via="chat"`` sends it through chat completions (always PNG); ``extra`` adds wire fields.
        ``num_inference_steps``, ``guidance_scale``, ``negative_prompt`` are the wire spellings of
        steps, guidance, negative (as in ``result.params``); ``client.image(**result.recipe)`` repeats a result.
        """
        return self._run(_plans.image_plan(self._core, **call_arguments(locals())))

    def images(
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
        """A sweep: one image per seed x grid combination, ``concurrency`` requests at a time.

        ``grid`` maps image() arguments to values (``{"guidance": [2, 4], "steps": [4, 8]}``, every
        combination) or is a list of argument dicts; ``seed`` is one seed for every cell, ``seeds`` a
        sweep of them. The other arguments are image()'s, for every request. The requests run on a
        private event loop in a background thread (never ``asyncio.run`` in the caller's loop, so this
        works in a Jupyter cell); Ctrl-C cancels them all and closes their connections.
        """
        options = call_arguments(locals(), "prompt", "seeds", "grid", "concurrency")
        jobs = self._sweep_jobs(seeds, grid, concurrency, options)
        from vomni_nb.async_client import AsyncOmniClient

        async def sweep() -> ImageBatch:
            # The twin shares this client's core: its settings, and what either learns about the server.
            async with AsyncOmniClient._from_core(self._core, self._timeout) as twin:
                return await twin._sweep(prompt, jobs, options, concurrency)

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
        output_format: ImageFormat = "png",
        model: str | None = None,
        extra: Mapping[str, Any] | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        negative_prompt: str | None = None,
    ) -> ImageResult | ImageBatch:
        """Edit an image (bytes, path or result; or a list of them) following ``prompt``.

        ``size`` defaults to the first input's; the other arguments are image()'s.
        """
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        return self._run(_plans.edit_plan(self._core, images=images, **call_arguments(locals(), "image", "images")))

    def chat(
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
        """One chat answer to ``prompt`` (text, or a whole message list).

        ``system`` a system message; ``images`` / ``audio`` media to attach (bytes, paths or results);
        ``modalities`` what to answer with (``["text"]``, ``["text", "audio"]``; default: all the
        model produces); ``voice`` and ``audio_format`` for spoken answers; ``extra`` adds wire fields.
        """
        return self._run(_plans.chat_plan(self._core, **call_arguments(locals())))

    def chat_stream(
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
    ) -> ChatStream:
        """A streamed chat answer: iterate for TextDelta / AudioDelta / ImageDelta events; ``finish()``
        gives the ChatResult. The arguments are chat()'s."""
        reply, state, started = self._run(_plans.chat_stream_plan(self._core, **call_arguments(locals())))
        return ChatStream(reply, state, started=started, url=self.base_url)

    def speak(
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
        """Text to speech: a SpeechResult holding the whole file.

        ``voice`` a built-in or uploaded voice; ``speed`` 0.25-4; ``instructions`` a speaking style;
        ``language``; ``sample_rate`` in Hz (default: the model's); ``extra`` adds wire fields.
        """
        return self._run(_plans.speech_plan(self._core, **call_arguments(locals())))

    def speak_stream(
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
    ) -> SpeechStream:
        """Streamed speech (wav or pcm): ``mode="audio"`` raw bytes, ``mode="sse"`` events. Iterate for
        AudioDelta events; ``finish()`` gives the SpeechResult. The other arguments are speak()'s."""
        reply, state, started = self._run(_plans.speech_stream_plan(self._core, **call_arguments(locals())))
        return SpeechStream(reply, state, started=started, url=self.base_url)

    def video(
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
        """Create a video job, poll it every ``poll_interval`` s (``on_progress(job)`` each time), download the MP4.

        ``image`` a first frame to start from; ``timeout`` seconds before the job is cancelled; the
        sampling arguments are image()'s. Ctrl-C cancels the job on the server (DELETE).
        """
        return self._run(_plans.video_plan(self._core, **call_arguments(locals())))

    def cancel_video(self, job_id: str) -> dict[str, Any]:
        """Cancel (DELETE) a video job, finished or not."""
        return self._run(_plans.cancel_video_plan(self._core, job_id))

    def video_jobs(self, *, limit: int = 20, order: Literal["asc", "desc"] = "desc") -> list[dict[str, Any]]:
        """The server's video jobs, newest first by default."""
        return self._run(_plans.video_jobs_plan(self._core, limit, order))

    @property
    def voices(self) -> Voices:
        """List, upload (with the speaker's consent) and delete named voices."""
        return Voices(self)

    def models(self) -> list[str]:
        """The model names the server serves."""
        return self._run(_plans.models_plan(self._core))

    def health(self) -> dict[str, Any]:
        """``/health`` as a dict with ``ok``; an unhealthy server is an answer, not an error."""
        return self._run(_plans.health_plan(self._core))

    def version(self) -> str:
        """The server's version."""
        return self._run(_plans.version_plan(self._core))


class Voices:
    """``client.voices``: list, upload (with the speaker's consent) and delete named voices."""

    def __init__(self, client: OmniClient) -> None:
        self._client = client

    def list(self) -> dict[str, Any]:
        """Built-in (``voices``) and uploaded (``uploaded_voices``) voices."""
        return self._client._run(_plans.voices_list_plan(self._client._core))

    def upload(self, name: str, audio: MediaSource, *, consent: str, ref_text: str | None = None,
               speaker_description: str | None = None) -> dict[str, Any]:
        """Upload a voice sample under ``name``; ``consent`` says how the speaker agreed."""
        return self._client._run(_plans.voice_upload_plan(self._client._core, **call_arguments(locals())))

    def delete(self, name: str) -> dict[str, Any]:
        """Delete an uploaded voice."""
        return self._client._run(_plans.voice_delete_plan(self._client._core, name))
