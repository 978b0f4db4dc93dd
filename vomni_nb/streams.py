"""Stream objects returned by ``chat_stream()`` and ``speak_stream()``, sync and async.

Iterate them for events (:class:`TextDelta`, :class:`AudioDelta`, :class:`ImageDelta`); ``.text`` /
``.audio`` hold what arrived so far and :meth:`finish` (or ``.result``) gives the final result. Any
exception while reading, KeyboardInterrupt and CancelledError included, closes the connection at
once, which makes the server abort the generation. Nothing is ever retried once a stream began.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar, Union

import httpx

from vomni_nb.clientcore import Reply
from vomni_nb.errors import APITimeoutError, StreamError
from vomni_nb.protocol.sse import SSEDecoder
from vomni_nb.protocol.streaming import AudioDelta, ChatStreamState, ImageDelta, SpeechStreamState, StreamEvent, TextDelta
from vomni_nb.results import ChatResult, SpeechResult

__all__ = [
    "ChatStream",
    "SpeechStream",
    "AsyncChatStream",
    "AsyncSpeechStream",
    "TextDelta",
    "AudioDelta",
    "ImageDelta",
    "StreamEvent",
]

R = TypeVar("R", ChatResult, SpeechResult)
State = Union[ChatStreamState, SpeechStreamState]


class _StreamCore(Generic[R]):
    """Turns body chunks into events; shared by the sync and async streams."""

    def __init__(self, reply: Reply, state: State, *, sse: bool, started: float, url: str) -> None:
        self._reply = reply
        self._state = state
        self._url = url
        content_type = reply.headers.get("content-type", "")
        # A pure-diffusion server ignores stream=true and answers one JSON body.
        self._json_body = isinstance(state, ChatStreamState) and content_type.startswith("application/json")
        self._decoder: SSEDecoder | None = SSEDecoder() if sse and not self._json_body else None
        self._pending: deque[StreamEvent] = deque()
        self._body = bytearray()
        self._started = started
        self._first_event: float | None = None
        self._finished = False
        self._result: R | None = None

    def __repr__(self) -> str:
        # Echoing a stream in a cell must say what to do with it, not print an object address.
        if self._finished:
            return f"{type(self).__name__}({self._url}, finished: {self._result!r})"
        return f"{type(self).__name__}({self._url}, open: iterate it for events, or call .finish() for the result)"

    @property
    def text(self) -> str:
        return self._state.text if isinstance(self._state, ChatStreamState) else ""

    @property
    def audio(self) -> bytes | None:
        return self._state.audio

    @property
    def response_headers(self) -> dict[str, str]:
        return dict(self._reply.headers)

    def _partial(self) -> Any:
        return self._state.text if isinstance(self._state, ChatStreamState) else self._state.audio

    def _consume(self, chunk: bytes) -> None:
        if self._json_body:
            self._body += chunk
            return
        if self._decoder is None:
            assert isinstance(self._state, SpeechStreamState)
            events = self._state.feed_bytes(chunk)
        else:
            events = [e for sse in self._decoder.feed(chunk) for e in self._state.feed(sse)]
        if events and self._first_event is None:
            self._first_event = time.perf_counter() - self._started
        self._pending.extend(events)

    def _end(self) -> None:
        if self._json_body:
            assert isinstance(self._state, ChatStreamState)
            self._pending.extend(self._state.events_from_json(bytes(self._body)))
        elif self._decoder is not None:
            for sse in self._decoder.flush():
                self._pending.extend(self._state.feed(sse))
            if not self._state.done:
                raise StreamError(
                    "The stream ended before its final event (server crash or dropped connection); "
                    "what arrived is in .partial.",
                    url=self._url,
                    partial=self._partial(),
                )
        self._finished = True
        timings = {"total_s": time.perf_counter() - self._started}
        if self._first_event is not None:
            timings["first_event_s"] = self._first_event
        self._result = self._state.result(timings)  # type: ignore[assignment]

    def _transport_error(self, exc: Exception) -> Exception:
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(f"The stream from {self._url} stalled (read timeout); raise timeout=....", url=self._url)
        return StreamError(
            f"The connection broke in the middle of the stream ({type(exc).__name__}); what arrived is in .partial. "
            "The server may have failed: see its log (`%omni_server logs`).",
            url=self._url,
            partial=self._partial(),
        )


class _SyncStream(_StreamCore[R], Iterator[StreamEvent]):
    def __init__(self, reply: Reply, state: State, *, sse: bool, started: float, url: str) -> None:
        super().__init__(reply, state, sse=sse, started=started, url=url)
        self._response: httpx.Response = reply.stream
        self._chunks = self._response.iter_bytes()

    def __iter__(self) -> _SyncStream[R]:
        return self

    def __next__(self) -> StreamEvent:
        try:
            while not self._pending:
                if self._finished:
                    raise StopIteration
                try:
                    chunk = next(self._chunks)
                except StopIteration:
                    self.close()
                    self._end()
                    continue
                except httpx.TransportError as exc:
                    raise self._transport_error(exc) from exc
                self._consume(chunk)
            return self._pending.popleft()
        except StopIteration:
            raise
        except BaseException:
            self.close()
            raise

    def finish(self) -> R:
        """Read the rest of the stream and return the final result."""
        for _ in self:
            pass
        assert self._result is not None
        return self._result

    @property
    def result(self) -> R:
        return self.finish()

    def close(self) -> None:
        """Close the connection now (the server aborts the request)."""
        self._response.close()

    def __enter__(self) -> _SyncStream[R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        response = getattr(self, "_response", None)
        if response is not None and not response.is_closed:
            response.close()


class _AsyncStream(_StreamCore[R], AsyncIterator[StreamEvent]):
    def __init__(self, reply: Reply, state: State, *, sse: bool, started: float, url: str) -> None:
        super().__init__(reply, state, sse=sse, started=started, url=url)
        self._response: httpx.Response = reply.stream
        self._chunks = self._response.aiter_bytes()

    def __aiter__(self) -> _AsyncStream[R]:
        return self

    async def __anext__(self) -> StreamEvent:
        try:
            while not self._pending:
                if self._finished:
                    raise StopAsyncIteration
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    await self.aclose()
                    self._end()
                    continue
                except httpx.TransportError as exc:
                    raise self._transport_error(exc) from exc
                self._consume(chunk)
            return self._pending.popleft()
        except StopAsyncIteration:
            raise
        except BaseException:
            await self.aclose()
            raise

    async def finish(self) -> R:
        async for _ in self:
            pass
        assert self._result is not None
        return self._result

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aenter__(self) -> _AsyncStream[R]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ChatStream(_SyncStream[ChatResult]):
    """Events of a streamed chat answer; ``.text``, ``.audio`` so far; ``finish()`` -> ChatResult."""


class SpeechStream(_SyncStream[SpeechResult]):
    """Audio events of streamed speech; ``.audio`` so far; ``finish()`` -> SpeechResult."""


class AsyncChatStream(_AsyncStream[ChatResult]):
    """Async twin of :class:`ChatStream` (``async for``, ``await finish()``)."""


class AsyncSpeechStream(_AsyncStream[SpeechResult]):
    """Async twin of :class:`SpeechStream`."""
