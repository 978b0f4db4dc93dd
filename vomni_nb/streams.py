"""Stream objects returned by ``chat_stream()`` and ``speak_stream()``, sync and async.

Iterate them for events (:class:`TextDelta`, :class:`AudioDelta`, :class:`ImageDelta`); ``.text`` /
``.audio`` hold what arrived so far and :meth:`finish` gives the final result. Rules: iteration is a
generator that closes the response in its ``finally``, so any exception while reading (KeyboardInterrupt
and CancelledError included) closes the connection at once, which makes the server abort the
generation; nothing is retried once a stream began; what the stream carries (chat or speech, SSE or
raw audio) is the state's business (:class:`~vomni_nb.protocol.streaming.StreamState`), not the stream's.

A stream from a server we do not control is bounded: the wait for the next *event* (not the next
byte, which a trickling server sends for ever) ends after the client's timeout, the whole stream
after ``Limits.stream_timeout``; the body is decompressed within ``Limits.max_stream_bytes``, and
the state bounds text and lines. Every error leaves with the client's key redacted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Generic, TypeVar, Union, cast

import httpx

from vomni_nb import _advice
from vomni_nb._core import Reply
from vomni_nb._deadline import clock, deadline_scope
from vomni_nb._transport import OpenBody, deadline_error
from vomni_nb.errors import APIError, APITimeoutError, Interrupted, ResponseFormatError, StreamError
from vomni_nb.protocol.body import BoundedBody
from vomni_nb.protocol.status import redact_error
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
        self._body: OpenBody = reply.stream
        self._response: httpx.Response = self._body.response
        self._state: StreamState[R] = state
        self._url = url
        self._started = started
        self._first_event: float | None = None
        self._result: R | None = None
        self._ended_by: BaseException | None = None  # what stopped the stream before its end
        state.bound(self._body.limits)
        self._decoder: BoundedBody | None = None  # made when reading starts, where its errors close the response
        self._opened = clock()
        self._waiting_since = self._opened  # since when the next event is awaited (the reader's own time is not)

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

    def _deadline(self) -> tuple[float | None, bool]:
        """When the wait for the next event ends, and whether that is the whole stream's end (not an idle gap)."""
        idle, whole = self._body.idle_timeout, self._body.limits.stream_timeout
        idle_end = None if idle is None else self._waiting_since + idle
        whole_end = None if whole is None else self._opened + whole
        if whole_end is not None and (idle_end is None or whole_end <= idle_end):
            return whole_end, True
        return idle_end, False

    def _waiting(self) -> contextlib.AbstractContextManager[None]:
        """Around one read of the body: socket waits end by the deadline of the next event."""
        return deadline_scope(self._deadline()[0])

    def _late(self) -> APITimeoutError:
        deadline, whole = self._deadline()
        if whole:
            return APITimeoutError(
                f"The stream from {self._url} was still going after {self._body.limits.stream_timeout:g} s "
                "(Limits.stream_timeout): stopped; what arrived is in the stream's .text and .audio. Raise the "
                "limit for longer streams.", url=self._url)
        return deadline_error(self._url, self._body.idle_timeout, stream=True)

    def _start_decoding(self) -> BoundedBody:
        try:
            return BoundedBody(self._response.headers, self._body.limits.max_stream_bytes,
                               what=f"The stream from {self._url}", setting="Limits.max_stream_bytes")
        except ResponseFormatError as exc:
            raise self._limit_error(exc) from exc

    def _events(self, raw: bytes) -> list[StreamEvent]:
        if self._decoder is None:
            self._decoder = self._start_decoding()
        try:
            chunk = self._decoder.feed(raw)
        except ResponseFormatError as exc:
            raise self._limit_error(exc) from exc
        events = self._state.feed_body(chunk) if chunk else []
        if events:
            if self._first_event is None:
                self._first_event = time.perf_counter() - self._started
        else:
            deadline = self._deadline()[0]
            if deadline is not None and clock() > deadline:  # bytes, but no event, for too long
                raise self._late()
        return events

    def _resume(self) -> None:
        """The reader asked for more: the wait for the next event starts now."""
        self._waiting_since = clock()

    def _last_events(self) -> list[StreamEvent]:
        if self._decoder is None:
            self._decoder = self._start_decoding()
        try:
            rest = self._decoder.end()
        except ResponseFormatError as exc:
            raise self._limit_error(exc) from exc
        events = (self._state.feed_body(rest) if rest else []) + self._state.end_body()
        timings = {"total_s": time.perf_counter() - self._started}
        if self._first_event is not None:
            timings["first_event_s"] = self._first_event
        self._result = self._state.result(timings)
        return events

    def _limit_error(self, exc: ResponseFormatError) -> StreamError:
        return StreamError(f"{exc} What arrived before it is in .partial.", url=self._url,
                           partial=self._state.partial)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Around the reading of the body: a transport failure becomes our error; the stream remembers
        what ended it early (for finish()); no error leaves with the key in it."""
        try:
            yield
        except BaseException as exc:
            error = redact_error(self._reading_error(exc), self._body.secrets)
            if error is exc:
                raise
            raise error from exc

    def _reading_error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, httpx.TimeoutException):  # a read that waited until the next event's deadline
            exc = self._late()
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
            failed = getattr(self._state, "failed", None)  # a recorded stream: the history hears of it too
            if failed is not None:
                failed(exc)
        return exc

    def _unfinished(self) -> BaseException:
        """finish() on a stream that ended early: the error that ended it, or one saying it was closed."""
        if isinstance(self._ended_by, APIError):
            return self._ended_by
        reason = "interrupted" if self._ended_by is not None else "closed"
        return redact_error(StreamError(
            f"The stream was {reason} before it finished (by this client, not the server); what arrived is in "
            ".partial.", url=self._url, partial=self._state.partial), self._body.secrets)


class _SyncStream(_StreamBase[R]):
    def __init__(self, reply: Reply, state: StreamState[R], *, started: float, url: str) -> None:
        super().__init__(reply, state, started=started, url=url)
        self._iterator = self._read()

    def _read(self) -> Generator[StreamEvent, None, None]:
        # closing(): whatever ends the reading (the end, an error, Ctrl-C, close()), the connection goes.
        raw = cast(Generator[bytes, None, None], self._response.iter_raw())
        with contextlib.closing(self._response), contextlib.closing(raw), self._reading():
            while True:
                with self._waiting():
                    chunk = next(raw, None)
                if chunk is None:
                    break
                events = self._events(chunk)
                if events:
                    yield from events
                    self._resume()
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
        raw = cast(AsyncGenerator[bytes, None], self._response.aiter_raw())
        async with contextlib.aclosing(self._response), contextlib.aclosing(raw):
            with self._reading():
                while True:
                    with self._waiting():
                        try:
                            chunk = await raw.__anext__()
                        except StopAsyncIteration:
                            break
                    events = self._events(chunk)
                    if events:
                        for event in events:
                            yield event
                        self._resume()
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
