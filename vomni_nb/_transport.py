"""The httpx side of both clients: building a request from a spec, classifying transport failures,
turning a response into a :class:`~vomni_nb._core.Reply`, and the private event loop of sync sweeps.

The only client module that knows httpx apart from the clients themselves and the streams; the plans
and the core never see an httpx object (an open streaming response travels inside ``Reply.stream``
as an opaque value).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar, Union

import httpx

from vomni_nb import _advice
from vomni_nb._core import ClientCore, Failure, Reply
from vomni_nb.errors import APIConnectionError, redact
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.protocol.status import connection_error, timeout_error

__all__ = ["DEFAULT_TIMEOUT", "TimeoutLike", "as_timeout", "Exchange", "transport_outcome_error", "run_on_private_loop",
           "CANCEL_GRACE_S"]

T = TypeVar("T")
TimeoutLike = Union[float, httpx.Timeout, None]

CANCEL_GRACE_S = 2.0  # how long an interrupted sweep waits for its requests to close

# Generations take long on real GPUs: a short connect timeout, a long read timeout.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=10.0)


def as_timeout(timeout: TimeoutLike) -> httpx.Timeout:
    """Seconds (or None: no limit) as an httpx.Timeout; a Timeout as it is."""
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


class Exchange:
    """One request of a send loop, less the blocking or awaited calls themselves::

        exchange = Exchange(http, core, spec, timeout)
        with exchange.failures():
            response = http.send(exchange.request, stream=True)
            return exchange.reply(response, b"" if exchange.streams(response) else read_and_close(response))
        return exchange.failure

    The request carries the core's URL and headers (key, fresh request id) and this client's timeout.
    A transport error inside ``failures()`` becomes ``exchange.failure``: was anything sent?
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
        self._started = time.perf_counter()

    def streams(self, response: httpx.Response) -> bool:
        """Whether the body is left open for a stream to read (a streamed request that succeeded)."""
        return self._spec.stream and response.status_code < 400

    def failures(self) -> Exchange:
        """Around sending and reading: a transport error becomes ``self.failure`` (and is not raised)."""
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> bool:
        if isinstance(error, httpx.TransportError):
            url = self._core.base_url + self._spec.path
            self.failure = transport_outcome_error(error, self._core, url, self._timeout)
            return True
        return False

    def reply(self, response: httpx.Response, content: bytes) -> Reply:
        """A Reply for ``response``; an open streaming response rides along in ``Reply.stream``."""
        # httpx.Headers, not a dict: the parsers rely on case-insensitive lookups.
        return Reply(response.status_code, response.headers, content, time.perf_counter() - self._started,
                     stream=response if self.streams(response) else None, request_id=self.request_id)


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
    return Failure(APIConnectionError(message + _advice.CHECK_SERVER_STATUS, url=url), before_send=False)


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
