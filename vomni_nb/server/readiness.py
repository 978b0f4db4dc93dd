"""Waiting for a launched server: poll /health every 50 ms while the process lives, follow the log
for the phase, and turn an exit, a 503 or the deadline into a ServerStartError with a diagnosis.
"""

from __future__ import annotations

import time

from vomni_nb.errors import ServerExited, ServerStartError, ServerStartTimeout, redact
from vomni_nb.server.diagnose import advance_phase, diagnose, tail_lines
from vomni_nb.server.handle import Server
from vomni_nb.server.launch import group_listens
from vomni_nb.server.probe import LogFollower, health_code, read_log
from vomni_nb.server.reporting import StartReporter

__all__ = ["wait_ready", "start_failure", "POLL_S", "LOG_TAIL_LINES"]

POLL_S = 0.05  # ready must be seen within 0.2 s of /health turning 200
LOG_TAIL_LINES = 20


def wait_ready(server: Server, started: float, timeout: float, reporter: StartReporter | None) -> None:
    """Return once ``GET /health`` is 200; raise ServerExited / ServerStartError / ServerStartTimeout."""
    run = server.run
    assert run is not None and run.process is not None
    follower = LogFollower(run.log_path)
    phase = "launching"
    deadline = started + timeout
    foreign = ""
    while True:
        returncode = run.process.poll()
        phase = advance_phase(phase, follower.read_new())
        if returncode is not None:
            raise start_failure(server, ServerExited, f"exited with code {returncode} before it was ready",
                                returncode=returncode)
        code = health_code(server.url, timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        if code == 200:
            # vLLM binds with SO_REUSEPORT: a program that took the port after our check can answer
            # /health while our server, which never listens, dies. Only our own listener counts.
            if group_listens(run.pgid, run.port) is not False:
                return
            foreign = f"; another program answers /health on port {run.port}"
        if code == 503:
            # Before listening the port refuses connections; a 503 means the engine died (reference §3.1).
            raise start_failure(server, ServerStartError, "answered /health with 503 while starting", health=503)
        if reporter is not None:
            reporter.phase(server.model, phase, time.monotonic() - started)
        if time.monotonic() > deadline:
            raise start_failure(server, ServerStartTimeout,
                                f"was not ready after {timeout:.0f} s (last phase: {phase}{foreign})", timed_out=timeout)
        time.sleep(POLL_S)


def start_failure(
    server: Server,
    error_type: type[ServerStartError],
    what: str,
    *,
    returncode: int | None = None,
    health: int | None = None,
    timed_out: float | None = None,
) -> ServerStartError:
    """The error for a failed start: cause and advice from the log, plus its last lines (key redacted)."""
    log = read_log(server.log_path)
    if timed_out is not None:
        cause = f"not ready within {timed_out:.0f} s"
        advice = "give it longer (--timeout), and check the log: downloads and first loads can take many minutes."
        found = diagnose(log, None, None, name=server.name)
        kind = "timeout"
        if found.kind != "unknown":
            cause, advice, kind = f"{cause}; {found.cause}", found.advice, found.kind
    else:
        found = diagnose(log, returncode, health, name=server.name)
        cause, advice, kind = found.cause, found.advice, found.kind
    tail = redact(tail_lines(log, LOG_TAIL_LINES), server.api_key)
    cause = redact(cause, server.api_key)
    message = redact(f"{server.model} {what}: {cause}\nAdvice: {advice}\nLog: {server.log_path}", server.api_key)
    log_path = str(server.log_path)
    if error_type is ServerExited:
        return ServerExited(message, returncode=returncode, cause=cause, advice=advice, kind=kind, log_tail=tail,
                            log_path=log_path)
    return error_type(message, cause=cause, advice=advice, kind=kind, log_tail=tail, log_path=log_path)
