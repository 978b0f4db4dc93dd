"""``ServerManager``: start, reuse, watch, attach and stop vLLM-Omni (or vomni-sim) servers.

One manager per kernel (``default_manager()``). Every launched server runs in its own session
with its log in a file; start-up is watched by polling /health every 50 ms while checking the
process is alive, so readiness and failures are seen at once. Clean-up happens at ``stop``, at
interpreter exit (atexit), and — for SIGKILLed kernels — through a watchdog process; the
registry file lets the next ``start`` find servers whose kernel died (``reconcile.py``).

Rules:
1. One name, one server; in one kernel, one server per model. A start that takes a name or a model
   from another server stops that one and says so in its ready line; it never drops one silently.
2. ``attach`` never stops anything: a taken name gets a distinct one (or, when asked for, a refusal).
3. Another kernel's private server is never touched; a start of its model says so (a real server is
   refused rather than loaded twice, unless ``another=True``).
4. The manager knows no UI: progress goes to a ``StartReporter`` (``reporting.py``), decisions to the
   ``vomni_nb.server`` log, with keys redacted.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from vomni_nb import _advice
from vomni_nb.errors import InvalidRequestError, ServerManagerError, ServerStartError
from vomni_nb.server import launch, reconcile
from vomni_nb.server.books import Books
from vomni_nb.server.command import build_command, build_env, check_extra_args, key_fits, parse_gpus, parse_port
from vomni_nb.server.entries import Owner, entry_for, run_from_entry, run_id
from vomni_nb.server.gpu import preflight
from vomni_nb.server.handle import LaunchSpec, Run, Server, ServerStatus
from vomni_nb.server.logfiles import new_log_path, prune_logs
from vomni_nb.server.ports import choose_port
from vomni_nb.server.probe import health_code, probe_remote
from vomni_nb.server.readiness import wait_ready
from vomni_nb.server.registry import Entry, Registry, process_started, secure_directory
from vomni_nb.server.reporting import ReporterFactory, StartReporter, log_event

__all__ = ["ServerManager"]

log = logging.getLogger(__name__)
DEBUG, INFO = logging.DEBUG, logging.INFO


def _say(level: int, text: str, *keys: str | None) -> None:
    log_event(log, level, text, *keys)


SIM_TIMEOUT_S = 60.0
VLLM_TIMEOUT_S = 1200.0  # big omni models download and load for many minutes
STOP_GRACE_S = 5.0
EXIT_GRACE_S = 3.0  # at kernel exit jupyter_client waits ~5 s before it kills us
PORT_RACE_RETRIES = 3


class ServerManager:
    """Starts and tracks servers for one kernel. See the module docstring.

    ``reporter_factory``: makes the ``StartReporter`` of each ``start``/``restart`` that is given
    none (the ``%omni_server`` magic installs the notebook's live status line here).
    """

    def __init__(
        self,
        *,
        registry_dir: Path | str | None = None,
        log_dir: Path | str | None = None,
        vllm_executable: str | None = None,
        nvidia_smi: str = "nvidia-smi",
        host: str = "127.0.0.1",
        default_port: int = launch.DEFAULT_PORT,
        register_atexit: bool = True,
        reporter_factory: ReporterFactory | None = None,
    ) -> None:
        self.registry = Registry(Path(registry_dir) if registry_dir is not None else None)
        self.log_dir = Path(log_dir) if log_dir is not None else self.registry.directory / "logs"
        self._own_log_dir = log_dir is None
        self.vllm_executable = vllm_executable or os.environ.get("VOMNI_VLLM_EXECUTABLE") or "vllm"
        self.nvidia_smi = nvidia_smi
        self.host = host
        self.default_port = default_port
        self.reporter_factory = reporter_factory
        self._books = Books()
        self._lock = threading.RLock()
        self._owner = Owner.this_process()
        if register_atexit:
            atexit.register(self.shutdown)

    # ---- lookup (the books: books.py) ---------------------------------------------------------

    @property
    def servers(self) -> list[Server]:
        return self._books.servers

    def get(self, name: str | None = None) -> Server:
        """The server called ``name`` (name, model id, short model name, URL, port or pid), or the default."""
        with self._lock:
            return self._books.get(name)

    def server_for(self, model: str | None = None) -> Server:
        """The server that serves ``model``; without a model, the default (``use``) or the only one."""
        with self._lock:
            return self._books.server_for(model)

    def url_for(self, model: str | None = None) -> str:
        return self.server_for(model).url

    def use(self, name: str) -> Server:
        """Make ``name`` the default server for requests that name no model."""
        with self._lock:
            return self._books.use(name)

    @property
    def default_name(self) -> str | None:
        return self._books.default_name

    # ---- start --------------------------------------------------------------------------------

    def start(
        self,
        model: str,
        *,
        port: int | str | None = None,
        gpus: str | Sequence[int] | int | None = None,
        timeout: float | None = None,
        sim: bool = False,
        api_key: str | None = None,
        extra_args: Sequence[str] = (),
        keep: bool = False,
        name: str | None = None,
        another: bool = False,
        reporter: StartReporter | None = None,
    ) -> Server:
        """Start ``vllm serve MODEL --omni`` (or vomni-sim with ``sim=True``) and wait until /health is 200.

        ``port``: None or "auto" = 8091 or the next free port; a number = exactly that (PortInUseError
        when taken). ``api_key``: "auto" makes one. A healthy server with the same model and arguments
        (here, or kept/orphaned by another kernel) is reused; ``keep=True`` (also on a running one):
        it outlives this kernel. A real model another kernel serves is refused (attach that one, or
        ``another=True`` for a second copy). Interrupting the wait stops the half-started server.
        """
        if not model or not model.strip():
            raise InvalidRequestError("start needs a model id, e.g. Tongyi-MAI/Z-Image-Turbo")
        model = model.strip()
        if timeout is not None and not timeout > 0:
            raise InvalidRequestError(f"--timeout takes seconds above 0; got {timeout:g}")
        wanted_port = parse_port(port)
        spec = LaunchSpec(model=model, kind="sim" if sim else "vllm", gpus=parse_gpus(gpus),
                          extra_args=check_extra_args(extra_args), keyed=api_key is not None)
        reporter = self._reporter(reporter)
        with self._lock:
            notes: list[str] = []
            server = self._reuse_ours(spec, wanted_port, api_key, notes)
            if server is None:
                server = self._reuse_from_registry(spec, wanted_port, api_key, another, notes)
            if server is not None:
                if keep and not server.keep:
                    self._make_kept(server)
                if name and name != server.name:
                    self._take_name(name, server, notes)
                _say(INFO, f"reusing {server.name} at {server.url} (pid {server.pid})", server.api_key)
                if reporter is not None:
                    reporter.done(server, reused=True, note="; ".join(notes))
                return server
            key = secrets.token_urlsafe(24) if api_key == "auto" else api_key
            server = Server(manager=self, name=name or model, model=model, kind=spec.kind, host=self.host,
                            owned=True, keep=keep, api_key=key, spec=spec)
            self._take_name(server.name, server, notes)
            try:
                self._launch(server, wanted_port, timeout, reporter, notes)
            except ServerStartError as exc:
                # What this start stopped on its way (a replaced server, a taken name) is gone too: a failed
                # start must say so, or a typo in the flags silently costs a loaded model.
                exc.before = tuple(notes)
                raise
            self._books.add(server)
            return server

    def _reporter(self, given: StartReporter | None) -> StartReporter | None:
        if given is not None or self.reporter_factory is None:
            return given
        return self.reporter_factory()

    def _reuse_ours(self, spec: LaunchSpec, port: int | None, api_key: str | None, notes: list[str]) -> Server | None:
        """Our healthy server for ``spec``; our servers of that model with other arguments give way."""
        for server in self._books.servers:
            if server.model != spec.model or server.kind == "remote":
                continue
            fits = server.spec == spec and (port is None or server.port == port) and key_fits(server.api_key, api_key)
            if fits and server.alive() and health_code(server.url) == 200:
                server._mark_reused()
                return server
            # Same model, other arguments (or dead): one model, one server, so this one gives way.
            if server.alive():
                notes.append(f"replaced the server at {server.url} (pid {server.pid}), started with other arguments")
            _say(INFO, f"replacing {server.name} (pid {server.pid}): a start asked for other arguments")
            self._stop_server(server)
        return None

    def _reuse_from_registry(self, spec: LaunchSpec, port: int | None, api_key: str | None, another: bool,
                             notes: list[str]) -> Server | None:
        found = reconcile.reconcile(self.registry, spec, port, api_key, self._owner, grace=STOP_GRACE_S)
        for ended in found.ended:
            notes.append(f"ended an orphaned server of {ended.model} (pid {ended.pid}) whose kernel was gone")
        if found.reusable is not None:
            return self._adopt(found.reusable, spec, notes)
        other = found.elsewhere
        if other is not None:
            if spec.kind == "vllm" and not another:
                raise ServerManagerError(_advice.served_elsewhere(spec.model, other.owner_pid, other.url))
            notes.append(_advice.second_copy(spec.model, other.owner_pid, other.url))
        return None

    def _adopt(self, entry: Entry, spec: LaunchSpec, notes: list[str]) -> Server:
        keep = entry.keep
        watchdog = None if keep else launch.spawn_watchdog(self._owner.pid, entry.pgid)
        server = Server(manager=self, name=spec.model, model=spec.model, kind=spec.kind, host=entry.host,
                        owned=True, keep=keep, api_key=entry.api_key, spec=spec, run=run_from_entry(entry, watchdog))
        if not keep:
            self.registry.replace(entry_for(server, self._owner))
            _say(DEBUG, f"watchdog {watchdog.pid if watchdog else '-'} spawned for adopted group {entry.pgid}")
        _say(INFO, f"adopted {spec.model} at {entry.url} (pid {entry.pid}) from the registry "
                   f"({'kept' if keep else 'an orphan'})", entry.api_key)
        server._mark_reused()
        self._take_name(server.name, server, notes)
        self._books.add(server)
        return server

    def _take_name(self, name: str, server: Server, notes: list[str]) -> None:
        """Give ``name`` to ``server``; a server that held it is stopped (attached: forgotten) and ``notes`` say so."""
        holder = self._books.holder(name)
        if holder is not None and holder is not server:
            what = "forgot" if not holder.owned else "stopped"
            notes.append(f"{what} the server that was called {name} ({holder.model} at {holder.url}): "
                         "one name, one server")
            _say(INFO, f"{what} {name} ({holder.model}): its name goes to another server")
            self._stop_server(holder)
        self._books.rename(server, name)

    def _make_kept(self, server: Server) -> None:
        run = server.run
        if run is not None and run.watchdog is not None:
            run.watchdog.terminate()
            run.watchdog.wait(5)
        server._make_kept()
        if server.run is not None:
            self.registry.replace(entry_for(server, self._owner))
        _say(INFO, f"{server.name} (pid {server.pid}) is kept: it outlives this kernel")

    def _launch(self, server: Server, wanted_port: int | None, timeout: float | None,
                reporter: StartReporter | None, notes: Sequence[str] = ()) -> None:
        started = time.monotonic()
        limit = timeout or (SIM_TIMEOUT_S if server.kind == "sim" else VLLM_TIMEOUT_S)  # for all tries together
        lost: set[int] = set()  # auto-chosen ports another program bound before our server could
        while True:
            port = self._spawn(server, wanted_port, frozenset(lost), started, reporter)
            try:
                wait_ready(server, started, limit, reporter)
                break
            except BaseException as exc:
                # Interrupted or failed: a half-started server would hold a GPU and a port for nothing.
                _say(INFO, f"start of {server.model} failed ({type(exc).__name__}); ending its process group")
                self._end_run(server)
                # A port we chose was free when we looked, but the server binds it only after its imports
                # (seconds for vLLM): on a busy machine another program can take it in between. A port the
                # user named is theirs to change.
                raced = (wanted_port is None and isinstance(exc, ServerStartError) and exc.kind == "port-in-use"
                         and len(lost) < PORT_RACE_RETRIES)
                if raced:
                    lost.add(port)
                    _say(INFO, f"port {port} was taken before {server.model} bound it; trying the next free port")
                    continue
                if reporter is not None:
                    reporter.failed(server.model, exc, time.monotonic() - started)
                raise
        server._ready(time.monotonic() - started)
        _say(INFO, f"{server.model} ready at {server.url} after {server.ready_s or 0.0:.1f} s")
        if lost:
            notes = [*notes, f"port{'s' if len(lost) > 1 else ''} {', '.join(map(str, sorted(lost)))} "
                             f"taken by another program while it started"]
        if reporter is not None:
            reporter.done(server, reused=False, note="; ".join(notes))

    def _spawn(self, server: Server, wanted_port: int | None, lost: frozenset[int], started: float,
               reporter: StartReporter | None) -> int:
        """Launch the server's process on a port (``wanted_port``, or a free one not in ``lost``), book
        and register the run; returns the port."""
        spec = server.spec
        assert spec is not None
        try:
            vllm = preflight(spec, self.vllm_executable, self.nvidia_smi)
            ours = frozenset(s.port for s in self._books.servers if s.port is not None)
            port = choose_port(self.host, wanted_port, default_port=self.default_port, registry=self.registry,
                               taken=ours | lost)
            secure_directory(self.log_dir, tighten=self._own_log_dir)
            prune_logs(self.log_dir)
            log_path = new_log_path(self.log_dir, server.model, port)
            command = build_command(spec, self.host, port, vllm=vllm)
            process = launch.spawn_server(command, env=build_env(dict(os.environ), spec, server.api_key),
                                          log_path=log_path)
        except (ServerManagerError, OSError) as exc:  # OSError: no free port; a log path we refuse to write
            error = exc if isinstance(exc, ServerManagerError) else ServerStartError(
                f"{server.model} could not be launched: {exc}", cause=str(exc))
            if reporter is not None:
                reporter.failed(server.model, error, time.monotonic() - started)
            raise error from (None if error is exc else exc)
        watchdog = None if server.keep else launch.spawn_watchdog(self._owner.pid, process.pid)
        pid_started = process_started(process.pid) or time.time()
        server._begin(Run(pid=process.pid, pgid=process.pid, pid_started=pid_started, port=port, log_path=log_path,
                          started_at=time.time(), registry_id=run_id(process.pid, pid_started), process=process,
                          watchdog=watchdog))
        self.registry.add(entry_for(server, self._owner))
        _say(INFO, f"launched {server.model} on port {port} (pid {process.pid}): {' '.join(command)}", server.api_key)
        if watchdog is not None:
            _say(DEBUG, f"watchdog {watchdog.pid} spawned for group {process.pid}")
        return port

    # ---- attach -------------------------------------------------------------------------------

    def attach(self, url: str, *, name: str | None = None, api_key: str | None = None) -> Server:
        """Use a server started elsewhere; its model is read from /v1/models. Never stopped by us.

        Attaching stops nothing: without ``name`` a taken name becomes ``MODEL@HOST:PORT``; a ``name``
        that another server holds is refused (pick another).
        """
        url, host, port, models = probe_remote(url, api_key)
        with self._lock:
            same = next((s for s in self._books.servers if s.url == url), None)
            if same is not None and (name is None or name == same.name):
                return same  # attached (or launched) already
            chosen = name or models[0]
            holder = self._books.holder(chosen)
            if holder is not None and name is not None:
                raise ServerManagerError(
                    f"{_advice.name_taken(chosen, f'{holder.model} at {holder.url}')}. Attaching stops nothing.")
            if holder is not None:
                chosen = f"{models[0]}@{host}:{port}"
            server = Server(manager=self, name=chosen, model=models[0], kind="remote", host=host,
                            owned=False, api_key=api_key, url=url)
            self._books.add(server)
        _say(INFO, f"attached {server.name} at {url}", api_key)
        return server

    # ---- stop / restart -----------------------------------------------------------------------

    def stop(self, target: Server | str | None = None) -> str:
        """Stop a server (the default one without a target); returns what happened, in words.

        A name that is not ours may be a kept server of another kernel (see ``list_servers``).
        """
        with self._lock:
            if isinstance(target, Server):
                server: Server | None = target
            elif target is None:
                server = self.server_for(None)
            else:
                server = self._books.match(target)
            if server is None:  # perhaps a kept server, or another kernel's (see list_servers)
                return reconcile.stop_entry(self.registry, str(target), grace=STOP_GRACE_S,
                                            running=self._books.names_text())
            return self._stop_server(server)

    def _stop_server(self, server: Server) -> str:
        self._books.remove(server)
        if not server.owned:
            _say(INFO, f"forgot {server.name} at {server.url} (attached, so not stopped)", server.api_key)
            return f"forgot {server.name} at {server.url} (attached: started elsewhere, so not stopped)"
        pid = server.pid
        self._end_run(server)
        _say(INFO, f"stopped {server.name} (pid {pid})")
        return f"stopped {server.name} (pid {pid})"

    def _end_run(self, server: Server, grace: float = STOP_GRACE_S) -> None:
        """End the server's process group and forget its run; returns once the group is gone."""
        run = server.run
        if run is None:
            return
        launch.terminate_group(run.pgid, run.process, grace=grace)
        if run.watchdog is not None:
            # Its job is done with the group gone; end it now rather than wait for its next look.
            run.watchdog.terminate()
            run.watchdog.wait(2.0)
        self.registry.remove(run.registry_id)
        server._end()

    def restart(self, target: Server | str | None = None, *, timeout: float | None = None,
                reporter: StartReporter | None = None) -> Server:
        """Stop and start again with the same model, arguments, port and key (a new pid).

        When the new start fails, the server is gone from the books and its processes are ended.
        """
        with self._lock:
            server = target if isinstance(target, Server) else self._books.get(target)
            if not server.owned or server.spec is None:
                raise ServerManagerError(f"{server.name} was started elsewhere (attached); restart it there.")
            port = server.port
            _say(INFO, f"restarting {server.name} (pid {server.pid})")
            self._end_run(server)
            try:
                self._launch(server, port, timeout, self._reporter(reporter))
            except BaseException:
                self._stop_server(server)
                raise
            self._books.add(server)
            return server

    def list_servers(self) -> list[ServerStatus]:
        """Our servers, plus live servers of other kernels from the registry (kept or orphaned).

        Registry rows that were skipped (malformed, or not verifiable as ours) are in ``registry.problems``.
        """
        statuses = [server.status() for server in self._books.servers]
        ours = {server.pid for server in self._books.servers}
        return statuses + reconcile.foreign_statuses(self.registry, self._owner, ours)

    def shutdown(self, grace: float = EXIT_GRACE_S) -> None:
        """Stop every server this kernel owns except kept ones (runs at exit)."""
        with self._lock:
            for server in self._books.servers:
                if server.owned and not server.keep and server.run is not None:
                    try:
                        self._end_run(server, grace=grace)
                    except Exception:  # at exit, one failure must not stop the others' clean-up
                        log.exception("could not stop %s at exit", server.name)
                self._books.remove(server)

