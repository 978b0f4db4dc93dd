"""Rate-limited logging: the same event logged a thousand times a second becomes a few lines and a count.

A flood of bad requests once grew the log by 177 MB in 40 s. Each kind of line (the same message with
its numbers and ids masked, or for the access log the same method, path and status) may appear
``--log-repeat-limit`` times per 10 s window, and all kinds together ten times that; the next line of a
kind that was held back says how many were suppressed. Start-up lines are never limited: the limiter is
installed only once the server is about to listen.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["RepeatLimiter", "RepeatFilter", "mask", "WINDOW_S"]

WINDOW_S = 10.0
MAX_KINDS = 4096  # distinct kinds remembered at once; older windows are forgotten first
_VARIABLE = re.compile(r"[0-9a-fA-F]{8,}|\d+")


def mask(message: str) -> str:
    """The kind of a message: numbers, ports and hex ids masked (``Request chatcmpl-# aborted.``)."""
    return _VARIABLE.sub("#", message[:300])


class RepeatLimiter:
    """Fixed 10 s windows per kind, plus one window for everything."""

    def __init__(self, per_kind: int, window: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_kind = per_kind
        self.total = per_kind * 10
        self.window = window
        self.clock = clock
        self.kinds: dict[Hashable, list[float]] = {}  # kind -> [window start, lines, suppressed]
        self.all = [0.0, 0.0]  # [window start, lines]
        self.lock = threading.Lock()

    def check(self, kind: Hashable) -> tuple[bool, int]:
        """(log this line?, how many lines of this kind were suppressed before it)."""
        now = self.clock()
        with self.lock:
            if now - self.all[0] >= self.window:
                self.all = [now, 0.0]
            entry = self.kinds.get(kind)
            if entry is None or now - entry[0] >= self.window:
                suppressed = int(entry[2]) if entry is not None else 0
                if len(self.kinds) >= MAX_KINDS:
                    self._forget(now)
                entry = self.kinds[kind] = [now, 0.0, float(suppressed)]
            if entry[1] >= self.per_kind or self.all[1] >= self.total:
                entry[2] += 1
                return False, 0
            entry[1] += 1
            self.all[1] += 1
            suppressed, entry[2] = int(entry[2]), 0.0
            return True, suppressed

    def _forget(self, now: float) -> None:
        stale = [kind for kind, entry in self.kinds.items() if now - entry[0] >= self.window]
        for kind in stale or list(self.kinds)[: MAX_KINDS // 2]:
            del self.kinds[kind]


def _kind(record: logging.LogRecord) -> Hashable:
    args = record.args
    if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) >= 5:
        # '%s - "%s %s HTTP/%s" %d': the client's address and the query do not make a new kind.
        return ("access", args[1], str(args[2]).split("?", 1)[0][:200], args[4])
    return (record.name, record.levelno, mask(str(record.msg)))


class RepeatFilter(logging.Filter):
    """A logging filter for uvicorn's and asyncio's loggers."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        allowed, suppressed = self.limiter.check(_kind(record))
        if allowed and suppressed:
            note = f" [vomni-sim: {suppressed} similar lines suppressed]"
            record.msg = str(record.msg) + (note.replace("%", "%%") if record.args else note)
        return allowed
