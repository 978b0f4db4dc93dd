"""Log lines in vLLM's own format, so log watchers written for the real server read ours too.

vLLM prints ``(APIServer pid=N) INFO 11-24 21:47:00 [api_server.py:864] message`` on stdout; every
line is flushed at once because the server manager tails the log file while we start.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from vomni_nb.sim.lograte import RepeatLimiter, mask

__all__ = ["info", "warning", "error", "raw", "limit_repeats"]

_lock = threading.Lock()
_limiter: RepeatLimiter | None = None


def limit_repeats(limiter: RepeatLimiter | None) -> None:
    """From now on, lines of one kind are rate-limited (installed once start-up has been logged)."""
    global _limiter
    _limiter = limiter


def _emit(level: str, message: str, where: str, prefix: str) -> None:
    if _limiter is not None:
        allowed, suppressed = _limiter.check((level, where, mask(message)))
        if not allowed:
            return
        if suppressed:
            message += f" [vomni-sim: {suppressed} similar lines suppressed]"
    stamp = time.strftime("%m-%d %H:%M:%S")
    lines = message.splitlines() or [""]
    with _lock:
        for line in lines:
            sys.stdout.write(f"({prefix} pid={os.getpid()}) {level} {stamp} [{where}] {line}\n")
        sys.stdout.flush()


def info(message: str, where: str = "api_server.py:1", prefix: str = "APIServer") -> None:
    _emit("INFO", message, where, prefix)


def warning(message: str, where: str = "api_server.py:1", prefix: str = "APIServer") -> None:
    _emit("WARNING", message, where, prefix)


def error(message: str, where: str = "api_server.py:1", prefix: str = "APIServer") -> None:
    _emit("ERROR", message, where, prefix)


def raw(text: str, *, stderr: bool = False) -> None:
    """Lines printed outside vLLM's logger (tracebacks, uvicorn's own lines)."""
    stream = sys.stderr if stderr else sys.stdout
    with _lock:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()
