"""The first thing every request meets: who may call (Origin), and how much body it may send.

Rule 1: a browser page may not drive the simulator. Browsers send ``Origin`` on every cross-origin POST,
including the multipart forms a page can send without a preflight, so a request whose Origin is not
allowed is refused (403) before its body is read. Clients that are not browsers send no Origin.
Same-origin pages (the simulator's own /docs) pass when the Host is an address or ``localhost``, which a
DNS-rebinding page cannot be.
Rule 2: body limits are enforced while reading: a Content-Length over the limit is refused at once, a
chunked body when it crosses the limit, so no request buffers or spools more than the limit. JSON bodies
have a smaller limit and a cap on their values, because parsing turns 3 bytes (``{},``) into ~100.
Rule 3: all request bodies held at once share one budget (``--max-body-memory``); beyond it, 503.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vomni_nb.sim.httperrors import error_response
from vomni_nb.sim.limits import Limits

__all__ = ["RequestGuard", "origin_allowed", "BodyRefused"]

JSON_TYPES = ("application/json",)


class BodyRefused(HTTPException):
    """Raised from ``receive`` while a body is read; FastAPI re-raises it and the app renders vLLM's shape."""


def _is_address_or_localhost(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def origin_allowed(origin: str, host: str | None, allowed: tuple[str, ...]) -> bool:
    """``--allowed-origins`` (``*`` = any), or the server's own origin on an address or localhost."""
    if "*" in allowed or origin in allowed:
        return True
    if host and _is_address_or_localhost(host):
        return origin in (f"http://{host}", f"https://{host}")
    return False


def _is_json(headers: Headers) -> bool:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or media.endswith("+json")


class _Body:
    """What one request has sent so far, checked as each chunk arrives."""

    def __init__(self, guard: RequestGuard, is_json: bool) -> None:
        self.guard = guard
        self.limits = guard.limits
        self.is_json = is_json
        self.size = 0
        self.values = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self.guard.held += len(chunk)
        limit, flag = self.guard.limit_for(self.is_json)
        if self.size > limit:
            raise BodyRefused(413, too_large_message(limit, flag))
        if self.is_json:
            self.values += chunk.count(b",") + chunk.count(b"{") + chunk.count(b"[")
            if self.values > self.limits.max_json_values:
                raise BodyRefused(
                    400,
                    f"JSON body has more than {self.limits.max_json_values} values (commas, objects and arrays); "
                    "vomni-sim refuses it before parsing (--max-json-values).",
                )
        if self.guard.held > self.limits.max_body_memory:
            raise BodyRefused(
                503,
                f"vomni-sim is holding more than {self.limits.max_body_memory} bytes of request bodies at once "
                "(--max-body-memory); retry in a moment.",
                headers={"Retry-After": "1"},
            )


def too_large_message(limit: int, flag: str) -> str:
    return f"Request body is larger than vomni-sim accepts ({limit} bytes, {flag}); send less or raise the limit."


class RequestGuard:
    """Origin policy and body limits for every HTTP request (outermost middleware)."""

    def __init__(self, app: ASGIApp, limits: Limits, allowed_origins: tuple[str, ...]) -> None:
        self.app = app
        self.limits = limits
        self.allowed_origins = allowed_origins
        self.held = 0  # bytes of request bodies read by requests that have not finished

    def limit_for(self, is_json: bool) -> tuple[int, str]:
        if is_json:
            return min(self.limits.max_json_body_size, self.limits.max_body_size), "--max-json-body-size"
        return self.limits.max_body_size, "--max-body-size"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(origin, headers.get("host"), self.allowed_origins):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            message = (
                f"Cross-origin requests are refused (Origin: {origin[:200]}). To let a web page call vomni-sim, "
                f"start it with --allowed-origins '[\"{origin[:200]}\"]'."
            )
            await error_response(message, 403)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        body = _Body(self, _is_json(headers))
        limit, flag = self.limit_for(body.is_json)
        declared = headers.get("content-length")
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                await error_response(f"Invalid Content-Length header {declared[:40]!r}.", 400)(scope, receive, send)
                return
            if int(declared) > limit:
                await error_response(too_large_message(limit, flag), 413)(scope, receive, send)
                return

        async def receive_within_limits() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.add(message.get("body", b""))
            return message

        started = False

        async def note_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limits, note_start)
        except BodyRefused as refused:  # read outside FastAPI's body handling; answer it here
            if started:
                raise
            response = error_response(str(refused.detail), refused.status_code, headers=dict(refused.headers or {}))
            await response(scope, receive, send)
        finally:
            self.held -= body.size
