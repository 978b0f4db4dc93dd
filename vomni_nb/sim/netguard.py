"""Slow and numerous clients: a clock on every connection that waits for its client, and a connection cap.

uvicorn (h11) times out only idle keep-alive connections: a client that sends half a request line, or a
body one byte a minute, keeps its connection (and a file descriptor) forever, and 1,100 of them starved
``/health``. This protocol adds, per connection:

Rule 1: request headers must be complete within ``--header-timeout`` of their first byte (or of the
connection opening); the clock is not reset by each byte, so trickling does not help.
Rule 2: a request body must be complete within ``--body-timeout`` of its headers.
Rule 3: over ``--max-connections``, a new connection evicts the oldest one that is waiting on its client
(headers, body, keep-alive idle, or a response it does not read); only when every connection is waiting
on the server is the new one answered 503. So ``/health`` answers while a thousand half-sent requests
are open.
A timed-out request gets ``408`` (vLLM's error shape) when no response has started, then the connection
closes. Warnings go through vlog's rate limit, so a flood makes a few lines, not megabytes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from vomni_nb.sim import vlog
from vomni_nb.sim.httperrors import error_body
from vomni_nb.sim.limits import Limits

try:
    import resource
except ImportError:  # Windows: no descriptor limit to raise
    resource = None  # type: ignore[assignment]

__all__ = ["ConnectionGuard", "guarded_protocol", "raise_fd_limit", "HEADERS", "BODY", "BUSY", "IDLE"]

HEADERS, BODY, BUSY, IDLE = "headers", "body", "busy", "idle"
FD_HEADROOM = 128  # descriptors beyond the connections: the listener, logs, temp files, storage


def _raw_response(code: int, reason: str, message: str) -> bytes:
    body = json.dumps(error_body(message, code)).encode()
    head = (
        f"HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """The open connections of one server, oldest first."""

    def __init__(self, limits: Limits, max_connections: int | None = None) -> None:
        self.limits = limits
        self.max_connections = max_connections or limits.max_connections
        self.open: dict[GuardedProtocol, None] = {}

    def admit(self, protocol: GuardedProtocol) -> bool:
        if len(self.open) >= self.max_connections:
            victim = next((p for p in self.open if p.waiting_on_client()), None)
            if victim is None:
                return False
            vlog.warning(
                f"More than {self.max_connections} connections (--max-connections): closed the oldest one "
                "that was waiting on its client.",
                where="netguard.py:1",
            )
            victim.drop()
        self.open[protocol] = None
        return True

    def leave(self, protocol: GuardedProtocol) -> None:
        self.open.pop(protocol, None)


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline whenever the connection waits on its client."""

    guard: ClassVar[ConnectionGuard]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase = ""
        self._timer: asyncio.TimerHandle | None = None
        self._seen_cycle: Any = None
        if not self.guard.admit(self):
            vlog.warning(
                f"Refused a connection: {self.guard.max_connections} connections are open and all are busy "
                "(--max-connections).",
                where="netguard.py:1",
            )
            transport.write(_raw_response(503, "Service Unavailable",
                                          "Too many open connections (--max-connections); retry in a moment."))
            self.drop()
            return
        self._set(HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self.guard.leave(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase == IDLE:
            self._set(HEADERS)  # the first byte of the next request starts its header clock
        super().data_received(data)
        self._sync()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._sync()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The connection now belongs to a WebSocket protocol (none is installed today): let it go.
        self._cancel()
        self.guard.leave(self)
        self._phase = BUSY
        super().handle_websocket_upgrade(event)

    def waiting_on_client(self) -> bool:
        return self._phase in (HEADERS, BODY, IDLE) or bool(self.flow is not None and self.flow.write_paused)

    def drop(self) -> None:
        """Close now; the app sees a disconnect."""
        self._cancel()
        self.guard.leave(self)
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if not self.transport.is_closing():
            self.transport.close()

    def _sync(self) -> None:
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not self._seen_cycle:  # a new request's headers are complete
            self._seen_cycle = cycle
            self._set(BODY)
        if self._phase == BODY and self.conn.their_state is not h11.SEND_BODY:
            self._set(BUSY)
        if self._phase == BUSY and cycle.response_complete:
            self._set(IDLE)

    def _set(self, phase: str) -> None:
        if phase == self._phase:
            return
        self._cancel()
        self._phase = phase
        seconds = {
            HEADERS: self.guard.limits.header_timeout,
            BODY: self.guard.limits.body_timeout,
            IDLE: float(self.timeout_keep_alive),
        }.get(phase)
        if seconds is not None:
            self._timer = self.loop.call_later(seconds, self._expire, phase)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, phase: str) -> None:
        self._timer = None
        if phase != self._phase or self.transport.is_closing():
            return
        if phase == IDLE:
            self.drop()
            return
        flag, seconds, what = (
            ("--header-timeout", self.guard.limits.header_timeout, "complete request headers")
            if phase == HEADERS else ("--body-timeout", self.guard.limits.body_timeout, "the request body")
        )
        message = f"The client did not send {what} within {seconds:g} s ({flag}); the connection was closed."
        vlog.warning(message, where="netguard.py:1")
        # A 408 answers the request that timed out; after a response has started there is nothing to add.
        if phase == HEADERS or (self.cycle is not None and not self.cycle.response_started):
            self.transport.write(_raw_response(408, "Request Timeout", message))
        self.drop()


def guarded_protocol(guard: ConnectionGuard) -> type[H11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to one server's guard."""
    return type("VomniSimProtocol", (GuardedProtocol,), {"guard": guard})


def raise_fd_limit(connections: int) -> int:
    """Raise the soft descriptor limit so ``connections`` fit; return how many connections fit."""
    if resource is None:
        return connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - FD_HEADROOM))
