"""The httpx side of both clients: building a request from a spec, reading its answer within the
call's deadline and size limits, classifying transport failures, turning a response into a
:class:`~vomni_nb._core.Reply`, and the private event loop of sync sweeps.

The only client module that knows httpx apart from the clients themselves and the streams; the plans
and the core never see an httpx object (an open streaming response travels inside ``Reply.stream``
as an :class:`OpenBody`, an opaque value to them).

Rules for servers we do not control:

1. ``timeout`` bounds the *whole* answer of each request (connect, send, headers and body), not only
   each read: :mod:`vomni_nb._deadline` ends every socket wait by the request's deadline, and the
   body loop checks it between chunks too (for transports given by the caller).
2. A body is read through :class:`~vomni_nb.protocol.body.BoundedBody`: at most
   ``Limits.max_body_bytes`` as sent and ``Limits.max_decoded_bytes`` once decompressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ssl
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar, Union

import httpx

from vomni_nb import _advice
from vomni_nb._core import ClientCore, Failure, Reply
from vomni_nb._deadline import clock, deadline_scope, with_deadlines
from vomni_nb.errors import APIConnectionError, APITimeoutError, redact
from vomni_nb.protocol.body import BoundedBody
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.protocol.limits import Limits
from vomni_nb.protocol.status import connection_error, timeout_error

__all__ = ["DEFAULT_TIMEOUT", "TimeoutLike", "as_timeout", "whole_answer_timeout", "Exchange", "OpenBody",
           "new_transport", "new_async_transport", "transport_outcome_error", "deadline_error",
           "run_on_private_loop", "CANCEL_GRACE_S"]

T = TypeVar("T")
TimeoutLike = Union[float, httpx.Timeout, None]

CANCEL_GRACE_S = 2.0  # how long an interrupted sweep waits for its requests to close

# Generations take long on real GPUs: a short connect timeout, a long read timeout.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def as_timeout(timeout: TimeoutLike) -> httpx.Timeout:
    """Seconds (or None: no limit) as an httpx.Timeout; a Timeout as it is."""
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


def whole_answer_timeout(timeout: httpx.Timeout) -> float | None:
    """How long one request may take in all, and a stream between two events: the read timeout
    (``OmniClient(timeout=5)``: 5 s for the whole answer; the default 600 s)."""
    return timeout.read


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS settings, made once per process: each new context reads the whole CA bundle again
    (tens of ms, paid by every client: each server of a sweep, every ``server.client()``), and a context is
    safe to share. The environment (SSL_CERT_FILE, SSL_CERT_DIR) is read when the first client is made."""
    return httpx.create_ssl_context()


def new_transport() -> httpx.HTTPTransport:
    """httpx's default transport, its socket waits bounded by the call's deadline."""
    return with_deadlines(httpx.HTTPTransport(verify=_tls()))


def new_async_transport() -> httpx.AsyncHTTPTransport:
    return with_deadlines(httpx.AsyncHTTPTransport(verify=_tls()))


@dataclasses.dataclass(frozen=True)
class OpenBody:
    """A streaming answer whose body is still to be read, with the rules for reading it."""

    response: httpx.Response
    limits: Limits
    idle_timeout: float | None  # the longest wait for the next event
    secrets: tuple[str, ...]  # what the stream's errors must not show


class Exchange:
    """One request of a send loop, less the blocking or awaited calls themselves::

        exchange = Exchange(http, core, spec, timeout)
        with exchange.failures():
            response = http.send(exchange.request, stream=True)
            return exchange.reply(response, b"" if exchange.streams(response) else exchange.read(response))
        return exchange.failure

    The request carries the core's URL and headers (key, fresh request id) and this client's timeout.
    Inside ``failures()`` every socket wait ends by the request's deadline, and a transport error
    becomes ``exchange.failure``: was anything sent?
    """

    def __init__(self, http: httpx.Client | httpx.AsyncClient, core: ClientCore, spec: RequestSpec,
                 timeout: httpx.Timeout) -> None:
        url, headers = core.url_and_headers(spec)
        # Only a copy from with_options() has a timeout of its own (and passing one costs a few microseconds).
        own_timeout: dict[str, Any] = {} if timeout == http.timeout else {"timeout": timeout}
        self.request = http.build_request(spec.method, url, json=spec.json, content=spec.content, params=spec.params,
                                          headers=headers, **own_timeout)
        self.request_id = headers.get("X-Request-Id")  # vLLM echoes it (with --enable-request-id-headers) unchanged
        self.failure: Failure | None = None
        self._core, self._spec, self._timeout = core, spec, timeout
        self._url = url
        self._started = time.perf_counter()
        self.whole = whole_answer_timeout(timeout)
        self.deadline = None if self.whole is None else clock() + self.whole
        self._scope: contextlib.ExitStack | None = None

    def streams(self, response: httpx.Response) -> bool:
        """Whether the body is left open for a stream to read (a streamed request that succeeded)."""
        return self._spec.stream and 200 <= response.status_code < 300

    def failures(self) -> Exchange:
        """Around sending and reading: the deadline holds, a transport error becomes ``self.failure``."""
        return self

    def __enter__(self) -> None:
        self._scope = contextlib.ExitStack()
        self._scope.enter_context(deadline_scope(self.deadline))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> bool:
        if self._scope is not None:
            self._scope.close()
        if isinstance(error, httpx.TransportError):
            url = self._core.base_url + self._spec.path
            self.failure = transport_outcome_error(error, self._core, url, self._timeout)
            return True
        if isinstance(error, APITimeoutError):  # check_deadline(): the request went out, so never resent
            self.failure = Failure(error, before_send=False)
            return True
        return False

    def body(self, response: httpx.Response) -> BoundedBody:
        """The reader of ``response``'s body, within this client's limits."""
        limits = self._core.limits
        return BoundedBody(response.headers, limits.max_body_bytes, what=f"The answer from {self._url}",
                           setting="Limits.max_body_bytes", decoded_limit=limits.max_decoded_bytes,
                           decoded_setting="Limits.max_decoded_bytes")

    def check_deadline(self) -> None:
        """Between two chunks: past the deadline, the answer is given up (whatever the transport does)."""
        if self.deadline is not None and clock() > self.deadline:
            raise deadline_error(self._url, self.whole)

    def read(self, response: httpx.Response) -> bytes:
        """The whole body (decoded, bounded); the response is closed whatever happens."""
        with contextlib.closing(response):
            body = self.body(response)
            parts = []
            for chunk in ([response.content] if response.is_stream_consumed else response.iter_raw()):
                parts.append(body.feed(chunk))
                self.check_deadline()
            parts.append(body.end())
            return b"".join(parts)

    async def aread(self, response: httpx.Response) -> bytes:
        async with contextlib.aclosing(response):
            body = self.body(response)
            parts = []
            if response.is_stream_consumed:  # a response built in memory (httpx.MockTransport)
                parts.append(body.feed(response.content))
            else:
                async for chunk in response.aiter_raw():
                    parts.append(body.feed(chunk))
                    self.check_deadline()
            parts.append(body.end())
            return b"".join(parts)

    def reply(self, response: httpx.Response, content: bytes) -> Reply:
        """A Reply for ``response``; an open streaming response rides along in ``Reply.stream``."""
        opened = None
        if self.streams(response):
            secrets = (self._core.api_key,) if self._core.api_key else ()
            opened = OpenBody(response, self._core.limits, self.whole, secrets)
        # httpx.Headers, not a dict: the parsers rely on case-insensitive lookups.
        return Reply(response.status_code, response.headers, content, time.perf_counter() - self._started,
                     stream=opened, request_id=self.request_id)


def deadline_error(url: str, seconds: float | None, *, stream: bool = False) -> APITimeoutError:
    """The call (or a stream, between two events) ran past its deadline while the server was still sending."""
    after = f" after {seconds:g} s" if seconds else ""
    if stream:
        return APITimeoutError(f"The stream from {url} sent no event{after}: the server may be stuck or overloaded "
                               "(what arrived is in the stream's .text and .audio). Raise timeout=... if it is just "
                               "slow.", url=url)
    return APITimeoutError(f"No whole answer from {url}{after} (the timeout covers the whole answer, not only each "
                           "read). The generation may still be running: raise timeout=..., or use fewer steps or a "
                           "smaller size.", url=url)


def transport_outcome_error(exc: httpx.TransportError, core: ClientCore, url: str, timeout: httpx.Timeout) -> Failure:
    """Classify a transport failure: did anything reach the server (only then is resending unsafe)?"""
    if isinstance(exc, httpx.ConnectError):
        detail = "connection refused" if _refused(exc) else redact(str(exc), core.api_key) or type(exc).__name__
        return Failure(connection_error(core.base_url, detail), before_send=True)
    if isinstance(exc, httpx.ConnectTimeout):
        return Failure(timeout_error(url, timeout.connect), before_send=True)
    if isinstance(exc, httpx.TimeoutException):
        # A read or write that waited too long: with the deadline layer, the whole answer's deadline.
        return Failure(deadline_error(url, whole_answer_timeout(timeout)), before_send=False)
    message = f"The connection to {url} failed mid-request ({type(exc).__name__}: {redact(str(exc), core.api_key)}). "
    return Failure(APIConnectionError(message + _advice.CHECK_SERVER_STATUS, url=url), before_send=False)


def _refused(exc: BaseException) -> bool:
    """Whether a connect failure was a refusal; the async backend says "All connection attempts failed" and
    keeps the ConnectionRefusedError in the chain."""
    chain: list[BaseException] = [exc]
    while len(chain) < 8 and (chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
    return any(isinstance(link, ConnectionRefusedError) or "refused" in str(link).lower() for link in chain)


def run_on_private_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a new event loop in a daemon thread and wait for it.

    A Jupyter kernel already runs a loop in the main thread, so sync code may not ``asyncio.run``.
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
