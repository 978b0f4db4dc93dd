"""``create_app(config)``: the FastAPI app of vomni-sim, with vLLM's error handling, auth and info routes.

The generation routes live in routers, one module per endpoint family: chat.py, images.py, speech.py
(with voices.py), speech_batch.py and videos.py.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vomni_nb.sim import chat, faults, images, speech, speech_batch, storage, video_jobs, videos
from vomni_nb.sim.app_deps import random_hex
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.families import Family
from vomni_nb.sim.httperrors import error_response, http_exception_response
from vomni_nb.sim.httpguard import RequestGuard
from vomni_nb.sim.startup import VLLM_VERSION
from vomni_nb.sim.state import state_of

__all__ = ["create_app", "validation_message"]

GUARDED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")
MAX_REPORTED_ERRORS = 10


class AuthMiddleware:
    """vLLM's API-key check: only /v1, /v2, /inference, /cohere; OPTIONS never; 401 ``{"error": "Unauthorized"}``."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        self.expected = [key.encode() for key in keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.expected or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope["path"][len(scope.get("root_path", "")):] if scope.get("root_path") else scope["path"]
        if not path.startswith(GUARDED_PREFIXES):
            await self.app(scope, receive, send)
            return
        # vLLM splits at the first space and compares the scheme case-insensitively ("bearer K" works).
        scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        if scheme.lower() == b"bearer" and any(hmac.compare_digest(given, want) for want in self.expected):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await JSONResponse({"error": "Unauthorized"}, status_code=401)(scope, receive, send)


class EngineDeathMiddleware:
    """After the response that ``--crash-after`` picked has been sent, the engine dies."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and faults.crash_pending(scope):
                faults.die_like_an_engine(self.fastapi_app)


class RequestIdHeaderMiddleware:
    """``--enable-request-id-headers``: every response carries X-Request-Id (the client's, or a new one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = dict(scope["headers"]).get(b"x-request-id") or random_hex(32).encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", request_id)]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _clean_loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not any(ch in str(p) for ch in "[]{}()")]
    return ".".join(parts) if parts else ".".join(str(p) for p in loc)


def _format_error(err: Any) -> str:
    if isinstance(err, dict):
        err = {k: v for k, v in err.items() if k != "url"}
        if isinstance(err.get("loc"), (tuple, list)):
            err["loc"] = _clean_loc(tuple(err["loc"]))
        if isinstance(err.get("input"), (list, dict, tuple)):
            err["input"] = f"<{type(err['input']).__name__} of {len(err['input'])} items>"
    return str(err)


def validation_message(errors: list[Any]) -> tuple[str, str | None]:
    """vLLM's 400 text for request validation errors: ``"N validation error(s):\\n  {...}"`` and the param path."""
    if not errors:
        return "Validation error", None
    count = len(errors)
    label = "error" if count == 1 else "errors"
    text = f"{count} validation {label}:\n" + "".join(f"  {_format_error(e)}\n" for e in errors[:MAX_REPORTED_ERRORS])
    if count > MAX_REPORTED_ERRORS:
        text += f"  ...and {count - MAX_REPORTED_ERRORS} more {label}\n"
    first = errors[0]
    param = _clean_loc(tuple(first["loc"])) if isinstance(first, dict) and first.get("loc") else None
    return text.rstrip(), param


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    message, param = validation_message(list(exc.errors()))
    return error_response(message, 400, param=param)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = http_exception_response(str(exc.detail), exc.status_code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _on_lone_surrogate(request: Request, exc: Exception) -> Response:
    # JSON may escape half a UTF-16 pair ("\\ud800"); echoed into a reply, a PNG chunk or an error
    # message it cannot be encoded. That is the client's bad text, so a 400 in the serving shape.
    return error_response(
        "The request holds a lone UTF-16 surrogate (such as \\ud800), which is not valid Unicode text; "
        "remove it and retry.", 400, err_type="BadRequestError",
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Exception text can hold paths and internals: it stays in the log (uvicorn prints the traceback,
    # rate-limited), and the client gets only the exception's type.
    return error_response(
        f"vomni-sim hit an unexpected {type(exc).__name__}; the server log has the details.", 500,
        err_type="InternalServerError",
    )


def _model_card(config: SimConfig, created: int) -> dict[str, Any]:
    diffusion = config.family in (Family.IMAGE, Family.VIDEO)
    return {
        "id": config.served_model_name,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": config.model,
        "parent": None,
        "max_model_len": None if diffusion else 32768,
        "permission": [
            {
                "id": f"modelperm-{random_hex(32)}",
                "object": "model_permission",
                "created": created,
                "allow_create_engine": False,
                "allow_sampling": True,
                "allow_logprobs": True,
                "allow_search_indices": False,
                "allow_view": True,
                "allow_fine_tuning": False,
                "organization": "*",
                "group": None,
                "is_blocking": False,
            }
        ],
        # Not in vLLM's card: an honest marker that nothing real runs behind this server.
        "simulated": True,
        "simulator": "vomni-sim",
    }


def _metrics_text(app: FastAPI, config: SimConfig) -> str:
    state = state_of(app)
    name = json.dumps(config.served_model_name)
    lines = [
        "# HELP vllm:num_requests_running Number of requests in model execution batches (simulated).",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{model_name={name}}} {state.in_flight}",
        "# HELP vllm_omni:generation_requests_total Generation requests received (vomni-sim).",
        "# TYPE vllm_omni:generation_requests_total counter",
        f"vllm_omni:generation_requests_total{{model_name={name}}} {state.generation_requests}",
        "# HELP vllm_omni:aborted_requests_total Requests aborted by client disconnect (vomni-sim).",
        "# TYPE vllm_omni:aborted_requests_total counter",
        f"vllm_omni:aborted_requests_total{{model_name={name}}} {state.aborted}",
        "# HELP vomni_sim_info Marks this server as the vomni-sim simulator.",
        "# TYPE vomni_sim_info gauge",
        f'vomni_sim_info{{model_name={name},family="{config.family.value}",version="{VLLM_VERSION}"}} 1',
    ]
    return "\n".join(lines) + "\n"


def create_app(config: SimConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every asyncio.to_thread (rendering, decoding, synthesis) shares these few threads, so N requests
        # at once cost at most --max-concurrent-work renders of memory; the rest wait their turn.
        workers = ThreadPoolExecutor(config.limits.max_concurrent_work, thread_name_prefix="vomni-sim-work")
        asyncio.get_running_loop().set_default_executor(workers)
        made_storage = config.storage_dir is None
        if config.storage_dir is None:
            config.storage_dir, _ = storage.prepare(None)
        sweeper = asyncio.create_task(video_jobs.expire_periodically(app))
        yield
        sweeper.cancel()
        if made_storage:
            storage.remove_tree(config.storage_dir)

    app = FastAPI(title="vomni-sim (simulated vLLM-Omni)", version=VLLM_VERSION, lifespan=lifespan)
    app.state.sim = config
    state_of(app)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(UnicodeEncodeError, _on_lone_surrogate)
    app.add_exception_handler(Exception, _on_unexpected)
    # vLLM's order (init_entrypoints_middleware): CORS first, then auth, so auth is the outer one and
    # a 401 carries no CORS headers; preflights still pass because auth never checks OPTIONS.
    # vLLM allows every origin by default; vomni-sim only those --allowed-origins names.
    if config.allowed_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(config.allowed_origins), allow_methods=list(config.allowed_methods),
            allow_headers=list(config.allowed_headers), allow_credentials=config.allow_credentials,
        )
    app.add_middleware(AuthMiddleware, keys=config.api_keys)
    app.add_middleware(EngineDeathMiddleware, fastapi_app=app)
    if config.enable_request_id_headers:
        app.add_middleware(RequestIdHeaderMiddleware)
    # Outermost: refuse foreign origins and oversized bodies before any other layer reads a byte.
    app.add_middleware(RequestGuard, limits=config.limits, allowed_origins=config.allowed_origins)

    @app.get("/health")
    async def health(request: Request) -> Response:
        if not state_of(request.app).healthy:
            return JSONResponse({"status": "unhealthy"}, status_code=503)
        return JSONResponse({"status": "healthy"})

    @app.get("/v1/models")
    async def show_available_models(request: Request) -> Response:
        # ModelCard and ModelPermission are built per request, so `created` is now (default_factory).
        return JSONResponse({"object": "list", "data": [_model_card(config, int(time.time()))]})

    @app.get("/version")
    async def show_version() -> Response:
        return JSONResponse({"version": VLLM_VERSION})

    @app.get("/ping")
    @app.post("/ping")
    async def ping(request: Request) -> Response:
        return Response(status_code=200 if state_of(request.app).healthy else 503)

    @app.get("/load")
    async def get_server_load_metrics(request: Request) -> Response:
        return JSONResponse({"server_load": state_of(request.app).in_flight})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        return PlainTextResponse(_metrics_text(request.app, config), media_type="text/plain; version=0.0.4")

    app.include_router(chat.router)
    app.include_router(images.router)
    app.include_router(speech.router)
    app.include_router(speech_batch.router)
    app.include_router(videos.router)
    return app
