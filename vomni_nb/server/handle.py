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

from vomni_nb import _advice
from vomni_nb.server.diagnose import diagnose
from vomni_nb.server.probe import health_code, read_log, read_log_tail
from vomni_nb.server.registry import process_alive

if TYPE_CHECKING:
    from vomni_nb.client import OmniClient
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


@dataclasses.dataclass(frozen=True)
class Run:
    """One process lifetime of a launched server (``process`` is None when adopted from the registry)."""

    pid: int
    pgid: int
    pid_started: float
    port: int
    log_path: Path
    started_at: float
    registry_id: str
    process: subprocess.Popen[bytes] | None = None
    watchdog: subprocess.Popen[bytes] | None = None
    ready_s: float | None = None


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
    """A server the manager knows: ``url``, ``model``, ``pid``… plus ``status()``, ``logs()``, ``stop()``,
    ``restart()`` and ``client()``.

    Its fields are read-only: its state changes only through the underscored methods at the end,
    which its manager calls (a start, an adoption, a rename, ``keep``, a stop).
    """

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
        self._name = name
        self._model = model
        self._kind = kind
        self._host = host
        self._owned = owned
        self._keep = keep
        self._api_key = api_key
        self._spec = spec
        self._run = run
        self._url = url
        self._reused = False

    @property
    def name(self) -> str:
        """What the manager calls it (the model id unless named otherwise)."""
        return self._name

    @property
    def model(self) -> str:
        """The model id it serves."""
        return self._model

    @property
    def kind(self) -> str:
        """``"sim"``, ``"vllm"`` or ``"remote"`` (attached)."""
        return self._kind

    @property
    def host(self) -> str:
        """The host it listens on."""
        return self._host

    @property
    def owned(self) -> bool:
        """Launched or adopted by this kernel, so stopped by it (attached servers never are)."""
        return self._owned

    @property
    def keep(self) -> bool:
        """Outlives the kernel."""
        return self._keep

    @property
    def api_key(self) -> str | None:
        """The key it was started with (None: none, or attached with the environment's)."""
        return self._api_key

    @property
    def spec(self) -> LaunchSpec | None:
        """What it was launched with (None when attached)."""
        return self._spec

    @property
    def run(self) -> Run | None:
        """The current process (None when attached or stopped)."""
        return self._run

    @property
    def reused(self) -> bool:
        """The latest ``start`` found it already running."""
        return self._reused

    @property
    def url(self) -> str:
        if self._run is not None:
            return f"http://{self._host}:{self._run.port}"
        return self._url or ""

    @property
    def port(self) -> int | None:
        return self._run.port if self._run is not None else None

    @property
    def pid(self) -> int | None:
        return self._run.pid if self._run is not None else None

    @property
    def pgid(self) -> int | None:
        return self._run.pgid if self._run is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._run.log_path if self._run is not None else None

    @property
    def started_at(self) -> float | None:
        return self._run.started_at if self._run is not None else None

    @property
    def ready_s(self) -> float | None:
        return self._run.ready_s if self._run is not None else None

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"Server(name={self._name!r}, model={self._model!r}, url={self.url!r}, kind={self._kind!r}, "
            f"pid={self.pid}, owned={self._owned}, keep={self._keep}, api_key={key})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def returncode(self) -> int | None:
        """The exit code when the process has exited and was our child, else None."""
        if self._run is None or self._run.process is None:
            return None
        return self._run.process.poll()

    def alive(self) -> bool:
        if self._run is None:
            return False
        if self._run.process is not None:
            return self._run.process.poll() is None
        return process_alive(self._run.pid, self._run.pid_started)

    def status(self) -> ServerStatus:
        base = ServerStatus(name=self._name, model=self._model, url=self.url, kind=self._kind, state="ready",
                            pid=self.pid, keep=self._keep, owned=self._owned)
        if self._run is not None and not self.alive():
            returncode = self.returncode()
            found = diagnose(read_log(self.log_path), returncode, name=self._name)
            return dataclasses.replace(base, state="exited", returncode=returncode, cause=found.cause,
                                       advice=found.advice)
        code = health_code(self.url, timeout=2.0)
        uptime = time.time() - self._run.started_at if self._run is not None else None
        if code == 200:
            return dataclasses.replace(base, health=code, uptime_s=uptime)
        if code is None:
            advice = (f"it may be busy, still starting, or gone: {_advice.server_logs(self._name)} shows its log."
                      if self._run is not None else "it was started elsewhere: check it there (is it up, is the URL right?).")
            return dataclasses.replace(base, state="unreachable", uptime_s=uptime,
                                       cause="nothing answers at " + self.url, advice=advice)
        found = diagnose(read_log(self.log_path), None, code, name=self._name)
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

    def client(self, **kwargs: Any) -> OmniClient:
        """An ``OmniClient`` for this server: its URL, model and key (imported lazily: managing servers
        needs no client). Keyword arguments go to ``OmniClient`` (``timeout=``, ``max_retries=``...)."""
        from vomni_nb.client import OmniClient

        return OmniClient(self, **kwargs)

    # ---- state changes, made by this server's manager ------------------------------------------

    def _rename(self, name: str) -> None:
        self._name = name

    def _begin(self, run: Run) -> None:
        """A new process serves it (a launch, a restart, or adopting one from the registry)."""
        self._run = run
        self._reused = False

    def _ready(self, seconds: float) -> None:
        assert self._run is not None
        self._run = dataclasses.replace(self._run, ready_s=seconds)

    def _end(self) -> None:
        """Its process is gone (stopped, or a failed start)."""
        self._run = None

    def _mark_reused(self) -> None:
        self._reused = True

    def _make_kept(self) -> None:
        """It outlives the kernel from now on (its watchdog, if any, has been ended by the manager)."""
        self._keep = True
        if self._run is not None:
            self._run = dataclasses.replace(self._run, watchdog=None)
