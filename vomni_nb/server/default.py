"""The kernel's default manager: what ``%omni_server`` and ``default_manager()`` use."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from vomni_nb.server.manager import ServerManager

__all__ = ["default_manager", "set_default_manager"]

_default: ServerManager | None = None
_default_lock = threading.Lock()


def default_manager() -> ServerManager:
    """This kernel's manager (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ServerManager()
        return _default


@contextlib.contextmanager
def set_default_manager(manager: ServerManager) -> Iterator[ServerManager]:
    """Make ``manager`` what ``default_manager()`` (and so ``%omni_server``) returns inside the ``with``
    block; the previous one comes back after it. For tests, tools and applications embedding vomni_nb."""
    global _default
    with _default_lock:
        previous, _default = _default, manager
    try:
        yield manager
    finally:
        with _default_lock:
            _default = previous
