"""Stream objects returned by ``chat_stream()`` and ``speak_stream()``, sync and async.

Iterate them for events (:class:`TextDelta`, :class:`AudioDelta`, :class:`ImageDelta`); ``.text`` /
``.audio`` hold what arrived so far and :meth:`finish` gives the final result. Rules: iteration is a
generator that closes the response in its ``finally``, so any exception while reading (KeyboardInterrupt
and CancelledError included) closes the connection at once, which makes the server abort the
generation; nothing is retried once a stream began; what the stream carries (chat or speech, SSE or
raw audio) is the state's business (:class:`~vomni_nb.protocol.streaming.StreamState`), not the stream's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Generic, TypeVar, Union

import httpx

from vomni_nb import _advice
from vomni_nb._core import Reply
from vomni_nb.errors import APITimeoutError, Interrupted, StreamError
from vomni_nb.protocol.streaming import AudioDelta, ImageDelta, StreamEvent, StreamState, TextDelta
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

R = TypeVar("R", bound=Union[ChatResult, SpeechResult])


class _StreamBase(Generic[R]):
    """Turns body chunks into events through the state; shared by the sync and async streams."""

    def __init__(self, reply: Reply, state: StreamState[R], *, started: float, url: str) -> None:
        self._reply = reply
        self._response: httpx.Response = reply.stream
        self._state: StreamState[R] = state
        self._url = url
        self._started = started
        self._first_event: float | None = None
        self._result: R | None = None
        self._ended_by: BaseException | None = None  # what stopped the stream before its end

    def __repr__(self) -> str:
        # Echoing a stream in a cell must say what to do with it, not print an object address.
        if self._result is not None:
            return f"{type(self).__name__}({self._url}, finished: {self._result!r})"
        return f"{type(self).__name__}({self._url}, open: iterate it for events, or call .finish() for the result)"

    @property
    def text(self) -> str:
        return self._state.text

    @property
    def audio(self) -> bytes | None:
        return self._state.audio

    @property
    def response_headers(self) -> dict[str, str]:
        return dict(self._reply.headers)

    def _events(self, chunk: bytes) -> list[StreamEvent]:
        events = self._state.feed_body(chunk)
        if events and self._first_event is None:
            self._first_event = time.perf_counter() - self._started
        return events

    def _last_events(self) -> list[StreamEvent]:
        events = self._state.end_body()
        timings = {"total_s": time.perf_counter() - self._started}
        if self._first_event is not None:
            timings["first_event_s"] = self._first_event
        self._result = self._state.result(timings)
        return events

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Around the reading of the body: a transport failure becomes our error; the stream remembers
        what ended it early (for finish())."""
        try:
            yield
        except BaseException as exc:
            error = self._reading_error(exc)
            if error is exc:
                raise
            raise error from exc

    def _reading_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, httpx.TimeoutException):
            exc = APITimeoutError(f"The stream from {self._url} stalled (read timeout); raise timeout=....", url=self._url)
        elif isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Interrupted):
            # Ctrl-C: closing the response (on the way out) makes the server abort; what arrived is kept.
            exc = Interrupted(_advice.interrupted() + "; what arrived is in .partial (and on the stream)",
                              url=self._url, partial=self._state.partial)
        elif isinstance(exc, httpx.TransportError):
            exc = StreamError(
                f"The connection broke in the middle of the stream ({type(exc).__name__}); what arrived is in "
                f".partial. {_advice.SEE_SERVER_LOG}",
                url=self._url,
                partial=self._state.partial,
            )
        if not isinstance(exc, GeneratorExit):  # GeneratorExit: closed by close(), not ended by anything
            self._ended_by = exc
        return exc

    def _unfinished(self) -> BaseException:
        """finish() on a stream that ended early: the error that ended it, or one saying it was closed."""
        if isinstance(self._ended_by, StreamError | APITimeoutError):
            return self._ended_by
        reason = "interrupted" if self._ended_by is not None else "closed"
        return StreamError(f"The stream was {reason} before it finished (by this client, not the server); what "
                           "arrived is in .partial.", url=self._url, partial=self._state.partial)


class _SyncStream(_StreamBase[R]):
    def __init__(self, reply: Reply, state: StreamState[R], *, started: float, url: str) -> None:
        super().__init__(reply, state, started=started, url=url)
        self._iterator = self._read()

    def _read(self) -> Generator[StreamEvent, None, None]:
        # closing(): whatever ends the reading (the end, an error, Ctrl-C, close()), the connection goes.
        with contextlib.closing(self._response), self._reading():
            for chunk in self._response.iter_bytes():
                yield from self._events(chunk)
            yield from self._last_events()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self._iterator

    def __next__(self) -> StreamEvent:
        return next(self._iterator)

    def finish(self) -> R:
        """Read the rest of the stream and return the final result."""
        for _ in self._iterator:
            pass
        if self._result is None:
            raise self._unfinished()
        return self._result

    @property
    def result(self) -> R:
        return self.finish()

    def close(self) -> None:
        """Close the connection now (the server aborts the request)."""
        self._iterator.close()
        self._response.close()

    def __enter__(self) -> _SyncStream[R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A stream dropped before it was read still holds its connection.
        response = getattr(self, "_response", None)
        if response is not None and not response.is_closed:
            response.close()


class _AsyncStream(_StreamBase[R]):
    def __init__(self, reply: Reply, state: StreamState[R], *, started: float, url: str) -> None:
        super().__init__(reply, state, started=started, url=url)
        self._iterator = self._read()

    async def _read(self) -> AsyncGenerator[StreamEvent, None]:
        # aclosing(): whatever ends the reading (the end, an error, cancellation, aclose()), the connection goes.
        async with contextlib.aclosing(self._response):
            with self._reading():
                async for chunk in self._response.aiter_bytes():
                    for event in self._events(chunk):
                        yield event
                for event in self._last_events():
                    yield event

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterator

    async def __anext__(self) -> StreamEvent:
        return await self._iterator.__anext__()

    async def finish(self) -> R:
        async for _ in self._iterator:
            pass
        if self._result is None:
            raise self._unfinished()
        return self._result

    async def aclose(self) -> None:
        await self._iterator.aclose()
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
