"""Fault injection and request lifecycle shared by every generation route.

Routes call :func:`before_generation` first; a returned Response is sent instead of the work.
Streaming routes ask :func:`midstream_error_after` and send :func:`stream_error_event`.
Work that a client may abandon runs through :func:`run_cancellable`, which aborts it on
disconnect and logs the line the real server logs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, MutableMapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from vomni_nb.sim import vlog
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.httperrors import error_response
from vomni_nb.sim.state import state_of

__all__ = [
    "before_generation",
    "log_abort",
    "midstream_error_after",
    "stream_error_event",
    "run_cancellable",
    "ClientGone",
    "engine_dead_response",
    "crash_pending",
    "die_like_an_engine",
]

T = TypeVar("T")

CRASH_FLAG = "vomni_crash_after_response"


class ClientGone(Exception):
    """The client disconnected; the work was aborted and nothing more should be sent."""


def sim_config(request: Request) -> SimConfig:
    config: SimConfig = request.app.state.sim
    return config


async def before_generation(request: Request, *, abortable: bool = True) -> Response | None:
    """Count a generation request and apply the fault knobs; a Response means: answer this instead.

    ``--latency`` stands for generation time, so a client that leaves during it aborts the request
    at once, as on the real server. ``abortable=False`` is for work that outlives its HTTP request
    (video jobs), whose connection is gone by design.
    """
    faults = sim_config(request).faults
    state = state_of(request.app)
    state.generation_requests += 1
    count = state.generation_requests
    if not state.healthy:
        return engine_dead_response(request)
    if faults.crash_after is not None and count >= faults.crash_after:
        # The Nth request is answered normally; the engine dies right after it (see crash_pending).
        request.scope.setdefault("state", {})[CRASH_FLAG] = True
    if faults.latency > 0:
        if not abortable:
            await asyncio.sleep(faults.latency)
        else:
            label = request.headers.get("x-request-id") or f"generation-{count}"
            try:
                await run_cancellable(request, label, asyncio.sleep(faults.latency))
            except ClientGone:
                return Response(status_code=499)
    # One roll picks at most one fault, so the 503/507 sequence of a --fault-seed stays the same
    # whether or not --rate-429 is given.
    roll = state.rng.random()
    retry_after = faults.retry_after
    header = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    if roll < faults.rate_503:
        return error_response(
            "The server is overloaded (simulated by vomni-sim --rate-503); retry after a moment.",
            503,
            headers={"Retry-After": header},
        )
    if roll < faults.rate_503 + faults.rate_507:
        return error_response(
            "CUDA out of memory while generating (simulated by vomni-sim --rate-507): "
            "try a smaller resolution, fewer images, or a quantized model.",
            507,
        )
    if roll < faults.rate_503 + faults.rate_507 + faults.rate_429:
        # vLLM itself never answers 429; a rate-limiting proxy or gateway in front of it does.
        return error_response(
            "Too many requests (simulated by vomni-sim --rate-429); retry after the Retry-After delay.",
            429,
            headers={"Retry-After": header},
        )
    return None


def engine_dead_response(request: Request) -> JSONResponse:
    """The 500 body of a request sent to a dead engine (reference §1, engine failure row)."""
    body = {
        "error": {
            "message": "EngineCore encountered an issue. See stack trace (above) for the root cause.",
            "type": "InternalServerError",
            "param": None,
            "code": 500,
            "request_id": request.headers.get("x-request-id"),
            "error_stage_id": 0,
        }
    }
    return JSONResponse(body, status_code=500)


def crash_pending(scope: MutableMapping[str, Any]) -> bool:
    """True when this request was the one after which ``--crash-after`` kills the engine."""
    state = scope.get("state")
    return bool(isinstance(state, dict) and state.get(CRASH_FLAG))


def die_like_an_engine(app: FastAPI) -> None:
    """Mark the engine dead (/health 503), log what vLLM logs, and exit 1 after ``--dead-engine-window``.

    The window stands for the seconds before vLLM's watchdog notices the death and shuts the server
    down; meanwhile /health answers 503 and generations the engine-dead 500.
    """
    state = state_of(app)
    if not state.healthy:
        return
    state.healthy = False
    count = sim_config_of(app).faults.crash_after
    vlog.error(
        f"Engine core proc EngineCore_DP0 died unexpectedly, shutting down client. "
        f"(simulated by vomni-sim --crash-after {count})",
        where="core_client.py:564",
    )
    vlog.error("AsyncOmni output_handler failed.", where="async_omni.py:612")
    vlog.raw("vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. "
             "See stack trace (above) for the root cause.")
    vlog.error("Engine failed, terminating server.", where="launcher.py:123")

    def exit_now() -> None:
        vlog.raw("INFO:     Shutting down", stderr=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    asyncio.get_running_loop().call_later(sim_config_of(app).faults.dead_engine_window, exit_now)


def sim_config_of(app: FastAPI) -> SimConfig:
    config: SimConfig = app.state.sim
    return config


def log_abort(request_id: str) -> None:
    """What AsyncOmni logs when a client disconnects and its request is aborted."""
    vlog.info(f"[AsyncOmni] Request {request_id} aborted.", where="async_omni.py:323")


def midstream_error_after(request: Request) -> int | None:
    """How many chunks a stream sends before the injected in-band error (None: no error)."""
    return sim_config(request).faults.midstream_error_after


def stream_error_event(message: str, err_type: str = "InternalServerError", code: int = 500) -> str:
    """``data: {"error": {...}}`` as vLLM writes it mid-stream: json.dumps with default separators."""
    payload = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return f"data: {json.dumps(payload)}\n\n"


MIDSTREAM_MESSAGE = "Simulated engine error in the middle of a stream (vomni-sim --midstream-error-after)."


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def run_cancellable(request: Request, request_id: str, work: Awaitable[T]) -> T:
    """Run ``work`` unless the client disconnects first; then cancel it, log the abort, raise ClientGone.

    Like vLLM's ``@with_cancellation``. Call it after the request body has been read.
    """
    state = state_of(request.app)
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    state.in_flight += 1
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        state.in_flight -= 1
    if task in done:
        watcher.cancel()
        return task.result()
    task.cancel()
    state.aborted += 1
    log_abort(request_id)
    raise ClientGone(request_id)
