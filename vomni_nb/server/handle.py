"""``Server``: a handle on one server (launched, adopted or attached), and its ``ServerStatus``.

A handle outlives restarts: ``restart()`` swaps the process underneath, so ``server.pid`` is
always the current one. What a handle can do goes through its manager, which owns the clean-up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vomni_nb.server.diagnose import diagnose
from vomni_nb.server.probe import health_code, read_log, read_log_tail
from vomni_nb.server.registry import process_alive

if TYPE_CHECKING:
    from vomni_nb.server.manager import ServerManager

__all__ = ["LaunchSpec", "Run", "Server", "ServerStatus"]


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """What makes two launches the same server (for reuse): not the port and not the key's value."""

    model: str
    kind: str  # "sim" or "vllm"
    gpus: tuple[int, ...] = ()
    extra_args: tuple[str, ...] = ()
    keyed: bool = False

    def identity(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclasses.dataclass
class Run:
    """One process lifetime of a launched server (``process`` is None when adopted from the registry)."""

    pid: int
    pgid: int
    pid_started: float
    port: int
    log_path: Path
    started_at: float
    process: subprocess.Popen[bytes] | None = None
    watchdog: subprocess.Popen[bytes] | None = None
    ready_s: float | None = None
    registry_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ServerStatus:
    """A snapshot: ``state`` is ready | unhealthy | exited | unreachable."""

    name: str
    model: str
    url: str
    kind: str
    state: str
    pid: int | None = None
    uptime_s: float | None = None
    returncode: int | None = None
    health: int | None = None
    keep: bool = False
    owned: bool = True
    cause: str = ""
    advice: str = ""

    def __str__(self) -> str:
        return self.line()

    def line(self) -> str:
        """One line for humans (two more with cause and advice when something is wrong)."""
        parts = [f"{self.name}: {self.state}", self.url]
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.uptime_s is not None and self.state == "ready":
            parts.append(f"up {_human_duration(self.uptime_s)}")
        parts.append(self.kind + (", kept" if self.keep else "") + ("" if self.owned else ", attached"))
        text = " — ".join(parts)
        if self.cause:
            text += f"\n  cause: {self.cause}\n  advice: {self.advice}"
        return text


def _human_duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Server:
    """A server the manager knows: ``url``, ``model``, ``pid``… plus ``status()``, ``logs()``, ``stop()``, ``restart()``."""

    def __init__(
        self,
        *,
        manager: ServerManager,
        name: str,
        model: str,
        kind: str,
        host: str,
        owned: bool,
        keep: bool = False,
        api_key: str | None = None,
        spec: LaunchSpec | None = None,
        run: Run | None = None,
        url: str | None = None,
    ) -> None:
        self._manager = manager
        self.name = name
        self.model = model
        self.kind = kind
        self.host = host
        self.owned = owned
        self.keep = keep
        self.api_key = api_key
        self.spec = spec
        self.run = run
        self._url = url
        self.reused = False

    @property
    def url(self) -> str:
        if self.run is not None:
            return f"http://{self.host}:{self.run.port}"
        return self._url or ""

    @property
    def port(self) -> int | None:
        return self.run.port if self.run is not None else None

    @property
    def pid(self) -> int | None:
        return self.run.pid if self.run is not None else None

    @property
    def pgid(self) -> int | None:
        return self.run.pgid if self.run is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.run.log_path if self.run is not None else None

    @property
    def started_at(self) -> float | None:
        return self.run.started_at if self.run is not None else None

    @property
    def ready_s(self) -> float | None:
        return self.run.ready_s if self.run is not None else None

    def __repr__(self) -> str:
        key = "'***'" if self.api_key else "None"
        return (
            f"Server(name={self.name!r}, model={self.model!r}, url={self.url!r}, kind={self.kind!r}, "
            f"pid={self.pid}, owned={self.owned}, keep={self.keep}, api_key={key})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def returncode(self) -> int | None:
        """The exit code when the process has exited and was our child, else None."""
        if self.run is None or self.run.process is None:
            return None
        return self.run.process.poll()

    def alive(self) -> bool:
        if self.run is None:
            return False
        if self.run.process is not None:
            return self.run.process.poll() is None
        return process_alive(self.run.pid, self.run.pid_started)

    def status(self) -> ServerStatus:
        base = ServerStatus(name=self.name, model=self.model, url=self.url, kind=self.kind, state="ready",
                            pid=self.pid, keep=self.keep, owned=self.owned)
        if self.run is not None and not self.alive():
            returncode = self.returncode()
            found = diagnose(read_log(self.log_path), returncode)
            return dataclasses.replace(base, state="exited", returncode=returncode, cause=found.cause,
                                       advice=found.advice)
        code = health_code(self.url, timeout=2.0)
        uptime = time.time() - self.run.started_at if self.run is not None else None
        if code == 200:
            return dataclasses.replace(base, health=code, uptime_s=uptime)
        if code is None:
            return dataclasses.replace(base, state="unreachable", uptime_s=uptime,
                                       cause="nothing answers at " + self.url,
                                       advice="it may still be starting, or gone: `%omni_server logs` shows its log.")
        found = diagnose(read_log(self.log_path), None, code)
        return dataclasses.replace(base, state="unhealthy", health=code, uptime_s=uptime, cause=found.cause,
                                   advice=found.advice)

    def logs(self, n: int = 40) -> str:
        """The last ``n`` lines of the server's log ("" for an attached server: its log is elsewhere)."""
        return read_log_tail(self.log_path, n)

    def stop(self) -> None:
        """Stop it (the whole process group); an attached server is only forgotten, never stopped."""
        self._manager.stop(self)

    def restart(self, timeout: float | None = None) -> Server:
        """Stop and start again with the same model and arguments; returns this handle (new pid)."""
        return self._manager.restart(self, timeout=timeout)

    def client(self, **kwargs: Any) -> Any:
        """An ``OmniClient`` for this server (imported lazily: the client is not needed to manage servers)."""
        from vomni_nb.client import OmniClient

        return OmniClient(self, **kwargs)
