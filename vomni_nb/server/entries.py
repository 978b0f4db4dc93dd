"""Marshalling between a ``Server`` handle and its registry row (``Entry``), in both directions."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

from vomni_nb.server.handle import Run, Server
from vomni_nb.server.registry import Entry, process_started

__all__ = ["Owner", "entry_for", "run_from_entry", "run_id"]


@dataclasses.dataclass(frozen=True)
class Owner:
    """The kernel a manager runs in: a pid and its start time (so a reused pid is not mistaken for it)."""

    pid: int
    started: float

    @classmethod
    def this_process(cls) -> Owner:
        pid = os.getpid()
        return cls(pid, process_started(pid) or time.time())


def run_id(pid: int, pid_started: float) -> str:
    """A launch's registry id: unique even when the pid is reused."""
    return f"{pid}-{pid_started:.3f}"


def entry_for(server: Server, owner: Owner) -> Entry:
    """The registry row of a launched or adopted server.

    The key is written only for a kept server, which another kernel may adopt and then must be able to
    talk to; a private server's key stays in its kernel's memory (its orphan, keyed, is ended, not adopted).
    """
    run, spec = server.run, server.spec
    assert run is not None and spec is not None, "only launched servers are registered"
    return Entry(
        id=run.registry_id, pid=run.pid, pgid=run.pgid, pid_started=run.pid_started, host=server.host,
        port=run.port, model=server.model, kind=server.kind, args=spec.extra_args, identity=spec.identity(),
        owner_pid=owner.pid, owner_started=owner.started, started_at=run.started_at, keep=server.keep,
        log_path=str(run.log_path), api_key=server.api_key if server.keep else None,
    )


def run_from_entry(entry: Entry, watchdog: subprocess.Popen[bytes] | None) -> Run:
    """The process of a server adopted from another (dead or kept) kernel's row."""
    return Run(pid=entry.pid, pgid=entry.pgid, pid_started=entry.pid_started, port=entry.port,
               log_path=Path(entry.log_path), started_at=entry.started_at, registry_id=entry.id, watchdog=watchdog)
