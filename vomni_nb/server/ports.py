"""Which port a launch gets: the one asked for when it is free, else a clear error naming the holder;
without one, the default (8091) or the next free port after it."""

from __future__ import annotations

from vomni_nb import _advice
from vomni_nb.errors import PortInUseError
from vomni_nb.server import launch
from vomni_nb.server.registry import Registry

__all__ = ["choose_port"]


def choose_port(host: str, wanted: int | None, *, default_port: int, taken: frozenset[int],
                registry: Registry) -> int:
    """``wanted`` if free; None: the first free port from ``default_port`` not in ``taken`` (ports of
    our own servers that may not be listening yet). The registry names a vomni_nb server holding it."""
    if wanted is None:
        return launch.find_free_port(host, default_port, avoid=taken)
    state = launch.port_state(host, wanted)
    if state == "free":
        return wanted
    holder = next((e for e in registry.entries() if e.port == wanted and e.alive()), None)
    who = (f"vomni_nb's server for {holder.model} (pid {holder.pid}{', kept' if holder.keep else ''}); "
           f"stop it with {_advice.server_stop(holder.model)}") if holder else "another program"
    how = "a server answers there" if state == "listening" else "a socket is bound to it"
    raise PortInUseError(
        f"port {wanted} on {host} is in use ({how}): held by {who}. Use --port auto to take the next free port."
    )
