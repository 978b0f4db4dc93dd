"""Deadlines that hold against a server trickling bytes: every socket wait ends by the call's deadline.

httpx's timeouts bound each read, so a server that sends one byte every 2 s never trips a 5 s
timeout and holds a call for ever. Here the client's send loop (and a stream, between events) sets
the moment its wait must end (:func:`deadline_scope`, a context variable, so it follows the thread
of a sync call and the task of an async one), and the network layer under httpx shortens each
connect, read and write to what is left of it, raising httpx's own timeout when nothing is left.

The layer is an httpcore *network backend* wrapping the default one (:func:`with_deadlines`);
httpcore documents backends as pluggable, httpx only lacks an argument to pass one, so the pool's
backend attribute is replaced (a test fails if an httpx upgrade moves it). A transport given by the
caller (``transport=``) is used as it is: its deadline is then checked between chunks only.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import httpcore
import httpx

__all__ = ["deadline_scope", "time_left", "with_deadlines", "has_deadlines", "clock"]

T = TypeVar("T", httpx.HTTPTransport, httpx.AsyncHTTPTransport)

clock = time.monotonic
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("vomni_nb_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Socket waits inside end by ``deadline`` (a :func:`clock` time; None: only httpx's own timeouts)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds left before the current deadline (None: there is none)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - clock()


def _shortened(timeout: float | None, timeout_error: type[Exception]) -> float | None:
    left = time_left()
    if left is None:
        return timeout
    if left <= 0:
        raise timeout_error("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _shortened(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _shortened(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, _shortened(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_tcp(host, port, _shortened(timeout, httpcore.ConnectTimeout),
                                                 local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _Stream(self._backend.connect_unix_socket(path, _shortened(timeout, httpcore.ConnectTimeout),
                                                         socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _shortened(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _shortened(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        stream = await self._stream.start_tls(ssl_context, server_hostname, _shortened(timeout, httpcore.ConnectTimeout))
        return _AsyncStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, _shortened(timeout, httpcore.ConnectTimeout),
                                                 local_address, socket_options)
        return _AsyncStream(stream)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(path, _shortened(timeout, httpcore.ConnectTimeout),
                                                         socket_options)
        return _AsyncStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def with_deadlines(transport: T) -> T:
    """``transport`` (httpx's default kind) with its socket waits bounded by the current deadline."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
    elif isinstance(backend, httpcore.AsyncNetworkBackend):
        pool._network_backend = _AsyncBackend(backend)  # type: ignore[union-attr]
    return transport


def has_deadlines(transport: Any) -> bool:
    """Whether ``transport`` bounds its socket waits by the deadline (see :func:`with_deadlines`)."""
    backend = getattr(getattr(transport, "_pool", None), "_network_backend", None)
    return isinstance(backend, (_Backend, _AsyncBackend))
