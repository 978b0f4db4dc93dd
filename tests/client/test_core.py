"""The core's settings and the deadline layer's delegation, without a server (pure parts of issue 14.12)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpcore
import pytest

from vomni_nb._core import ClientCore, normalize_base_url, resolve_target
from vomni_nb._deadline import _AsyncBackend, _Backend, clock, deadline_scope, time_left
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.limits import Limits
from vomni_nb.protocol.retry import RetryPolicy


def test_targets_and_copies() -> None:
    with pytest.raises(InvalidRequestError, match="no URL"):
        normalize_base_url("  ")
    with pytest.raises(InvalidRequestError, match="No server given"):
        resolve_target(None, None)
    core = ClientCore("http://a:1", api_key="k", model="m")
    copy = core.with_options(base_url="http://b:2", api_key="k2", retry_policy=RetryPolicy(max_retries=0),
                             limits=Limits(max_body_bytes=10))
    assert (copy.base_url, copy.api_key, copy.policy.max_retries, copy.limits.max_body_bytes) == \
        ("http://b:2", "k2", 0, 10)
    assert core.limits.max_body_bytes == 256 << 20 and copy.recorded_model == "m"
    assert core.headers()["Accept-Encoding"] == "gzip, deflate"


class Recorder:
    """What the deadline layer passes down: the timeouts it was given (a stand-in for httpcore's own backend)."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, *args: Any) -> Recorder:
        self.timeouts.append(timeout)
        return self

    def connect_unix_socket(self, path: str, timeout: float | None = None, *args: Any) -> Recorder:
        return self.connect_tcp(path, 0, timeout)

    def start_tls(self, context: Any, name: str | None = None, timeout: float | None = None) -> Recorder:
        return self.connect_tcp("", 0, timeout)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        return b""

    def sleep(self, seconds: float) -> None:
        self.timeouts.append(seconds)

    def get_extra_info(self, info: str) -> str:
        return info


def test_socket_waits_are_shortened_to_the_deadline() -> None:
    inner = Recorder()
    backend = _Backend(inner)  # type: ignore[arg-type]
    assert time_left() is None
    stream = backend.connect_tcp("h", 1, timeout=10.0)  # no deadline: httpx's own timeout
    with deadline_scope(clock() + 2.0):
        stream.read(1, timeout=10.0)
        backend.connect_unix_socket("/s", timeout=None)
        stream.start_tls(ssl.create_default_context(), "h", timeout=10.0)
    backend.sleep(0.5)
    assert inner.timeouts[0] == 10.0 and all(t is not None and 0 < t <= 2.0 for t in inner.timeouts[1:4])
    assert inner.timeouts[4] == 0.5 and stream.get_extra_info("socket") == "socket"
    with deadline_scope(clock() - 1.0), pytest.raises(httpcore.ReadTimeout, match="deadline passed"):
        stream.read(1, timeout=10.0)


class AsyncRecorder(Recorder):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, *args: Any) -> AsyncRecorder:  # type: ignore[override]
        self.timeouts.append(timeout)
        return self

    async def connect_unix_socket(self, path: str, timeout: float | None = None, *args: Any) -> AsyncRecorder:  # type: ignore[override]
        return await self.connect_tcp(path, 0, timeout)

    async def start_tls(self, context: Any, name: str | None = None, timeout: float | None = None) -> AsyncRecorder:  # type: ignore[override]
        return await self.connect_tcp("", 0, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)

    async def aclose(self) -> None:
        self.timeouts.append(-1.0)

    async def sleep(self, seconds: float) -> None:  # type: ignore[override]
        self.timeouts.append(seconds)


def test_the_async_layer_shortens_the_same_waits() -> None:
    inner = AsyncRecorder()
    backend = _AsyncBackend(inner)  # type: ignore[arg-type]

    async def main() -> None:
        with deadline_scope(clock() + 2.0):
            stream = await backend.connect_tcp("h", 1, timeout=10.0)
            await stream.write(b"x", timeout=None)
            await backend.connect_unix_socket("/s", timeout=10.0)
            await stream.start_tls(ssl.create_default_context(), "h", timeout=10.0)
        await backend.sleep(0.5)
        await stream.aclose()
        assert stream.get_extra_info("x") == "x"

    asyncio.run(main())
    assert all(t is not None and 0 < t <= 2.0 for t in inner.timeouts[:4]) and inner.timeouts[4:] == [0.5, -1.0]
