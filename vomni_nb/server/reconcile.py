"""The registry against this kernel: which rows are other kernels' servers, kept ones, or orphans, and
which of them a start may reuse, must leave alone, or should end.

Roles of a (live) row, seen from one kernel:
- ours: this kernel launched or adopted it (the manager's own books say the rest);
- kernel: another live kernel's private server (never touched: it stops with that kernel);
- kept: started with ``keep``, it belongs to no kernel; any kernel may reuse it and stop it;
- orphan: its kernel is gone and its watchdog did not end it; reused if it fits, else ended.
Only rows that pass ``safety.why_unsafe`` (and name a log file of ours) count at all.
"""

from __future__ import annotations

import dataclasses
import logging
import time

from vomni_nb.errors import ServerManagerError
from vomni_nb.server import safety
from vomni_nb.server.command import key_fits
from vomni_nb.server.entries import Owner
from vomni_nb.server.handle import LaunchSpec, ServerStatus
from vomni_nb.server.logfiles import may_be_our_log
from vomni_nb.server.probe import health_code
from vomni_nb.server.registry import Entry, Registry

__all__ = ["Reconciled", "role", "trusted_entries", "reconcile", "foreign_statuses", "find_entry", "stop_entry"]

log = logging.getLogger(__name__)


def role(entry: Entry, owner: Owner) -> str:
    """``"ours"``, ``"kernel"``, ``"kept"`` or ``"orphan"`` (see the module docstring)."""
    if entry.owner_pid == owner.pid and abs(entry.owner_started - owner.started) < 0.5:
        return "ours"
    if entry.keep:
        return "kept"
    return "kernel" if entry.owner_alive() else "orphan"


def trusted_entries(registry: Registry) -> list[Entry]:
    """Live rows the manager may act on; the others are reported through ``registry.problems``."""
    trusted = []
    for entry in registry.prune_dead():
        reason = safety.why_unsafe(entry)
        if reason is None and not may_be_our_log(entry.log_path):
            reason = f"its log path {entry.log_path!r} is not a log file vomni_nb wrote"
        if reason is None:
            trusted.append(entry)
        else:
            registry.report(f"ignored the registry row for {entry.model} (pid {entry.pid}): {reason}")
    return trusted


@dataclasses.dataclass(frozen=True)
class Reconciled:
    """What the registry holds for a start: a server to adopt, another kernel's server of the model."""

    reusable: Entry | None = None
    elsewhere: Entry | None = None
    ended: tuple[Entry, ...] = ()


def reconcile(registry: Registry, spec: LaunchSpec, port: int | None, api_key: str | None, owner: Owner,
              *, grace: float) -> Reconciled:
    """Find a kept or orphaned server that fits ``spec`` (healthy, same arguments, port and key), and a
    live kernel's private server of the same model; end every orphan that does not fit."""
    reusable: Entry | None = None
    elsewhere: Entry | None = None
    ended: list[Entry] = []
    for entry in trusted_entries(registry):
        found = role(entry, owner)
        if found == "ours":
            continue
        if found == "kernel":
            if elsewhere is None and entry.model == spec.model and health_code(entry.url) == 200:
                elsewhere = entry
            continue
        fits = (reusable is None and entry.identity == spec.identity() and (port is None or entry.port == port)
                and key_fits(entry.api_key, api_key) and health_code(entry.url) == 200)
        if fits:
            reusable = entry
        elif found == "orphan" and safety.end_group(entry, grace, "an orphan: its kernel is gone"):
            registry.remove(entry.id)
            ended.append(entry)
    return Reconciled(reusable, elsewhere, tuple(ended))


def foreign_statuses(registry: Registry, owner: Owner, ours: set[int | None]) -> list[ServerStatus]:
    """Live servers of other kernels (private, kept or orphaned) as ``list_servers`` shows them."""
    statuses = []
    for entry in trusted_entries(registry):
        if entry.pid in ours or role(entry, owner) == "ours":
            continue
        code = health_code(entry.url, timeout=1.0)
        found = role(entry, owner)
        note = f"kernel {entry.owner_pid}" if found == "kernel" else "orphan" if found == "orphan" else ""
        statuses.append(ServerStatus(
            name=entry.model, model=entry.model, url=entry.url, kind=", ".join(filter(None, (entry.kind, note))),
            state="ready" if code == 200 else "unhealthy" if code else "unreachable",
            pid=entry.pid, uptime_s=time.time() - entry.started_at, health=code, keep=entry.keep, owned=False,
        ))
    return statuses


def find_entry(registry: Registry, target: str) -> Entry | None:
    """The live, trusted row that ``target`` names (model, short model name, port, pid or URL)."""
    for entry in trusted_entries(registry):
        if target in (entry.model, str(entry.port), str(entry.pid), entry.url, entry.model.rsplit("/", 1)[-1]):
            return entry
    return None


def stop_entry(registry: Registry, target: str, *, grace: float, running: str) -> str:
    """Stop the server a registry row names (a kept one, or another kernel's); says what happened."""
    entry = find_entry(registry, target)
    if entry is None:
        raise ServerManagerError(f"no server {target!r}; running: {running}")
    if not safety.end_group(entry, grace, "asked to stop it"):
        raise ServerManagerError(f"{entry.model} (pid {entry.pid}) could not be verified as a server vomni_nb "
                                 "started, so it was not signalled; the vomni_nb.server log says why.")
    registry.remove(entry.id)
    return f"stopped {entry.model} (pid {entry.pid}, port {entry.port})"
