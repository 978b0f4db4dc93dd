"""How the manager tells its caller about a start: a ``StartReporter``, made per start by a factory.

The manager knows no UI. Whoever drives it passes a reporter (``start(..., reporter=)``) or gives the
manager a factory (``ServerManager(reporter_factory=...)``) that makes one per start or restart: the
``%omni_server`` magic installs the notebook's live status line (``display.StartStatusLine``) this
way, ``tools/demo.py`` a console printer. Without either, starts are silent (but logged).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from vomni_nb.errors import redact

if TYPE_CHECKING:
    from vomni_nb.errors import ServerManagerError
    from vomni_nb.server.handle import Server

__all__ = ["StartReporter", "ReporterFactory", "log_event"]


class StartReporter(Protocol):
    """Receives start-up progress: phases while waiting, then exactly one of ``done`` or ``failed``.

    ``note`` says, in one line, what else happened (a server that gave way, a name that moved, how to
    keep a real server past the kernel); empty when nothing did. ``failed`` gets the exception the
    caller receives right after: a ``ServerManagerError`` (cause and advice in it, so a reporter need
    not repeat them), or ``KeyboardInterrupt`` when the wait was interrupted (the half-started server
    has been stopped by then).
    """

    def phase(self, model: str, phase: str, elapsed: float) -> None: ...

    def done(self, server: Server, *, reused: bool, note: str = "") -> None: ...

    def failed(self, model: str, error: ServerManagerError | BaseException, elapsed: float) -> None: ...


ReporterFactory = Callable[[], StartReporter]


def log_event(logger: logging.Logger, level: int, text: str, *secrets: str | None) -> None:
    """Log a decision of the manager (``vomni_nb.server.*`` loggers), keys removed by ``errors.redact``:
    bearer tokens, ``--api-key``/``VLLM_API_KEY=`` values and each of ``secrets``."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s", redact(text, *secrets))
