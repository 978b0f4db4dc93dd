"""``ServerManager``: start, reuse, watch, attach and stop vLLM-Omni (or vomni-sim) servers.

One manager per kernel (``default_manager()``). Every launched server runs in its own session
with its log in a file; start-up is watched by polling /health every 50 ms while checking the
process is alive, so readiness and failures are seen at once. Clean-up happens at ``stop``, at
interpreter exit (atexit), and — for SIGKILLed kernels — through a watchdog process; the
registry file lets the next ``start`` find servers whose kernel died.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vomni_nb.errors import InvalidRequestError, PortInUseError, ServerManagerError, ServerStartError
from vomni_nb.server import launch
from vomni_nb.server.command import (
    build_command,
    build_env,
    check_extra_args,
    key_fits,
    log_file_stem,
    parse_gpus,
    parse_port,
)
from vomni_nb.server.gpu import check_gpus
from vomni_nb.server.handle import LaunchSpec, Run, Server, ServerStatus
from vomni_nb.server.probe import health_code, served_models, split_url
from vomni_nb.server.readiness import StartReporter, wait_ready
from vomni_nb.server.registry import Entry, Registry, process_started

__all__ = ["ServerManager", "StartReporter", "default_manager"]

SIM_TIMEOUT_S = 60.0
VLLM_TIMEOUT_S = 1200.0  # big omni models download and load for many minutes
STOP_GRACE_S = 5.0
EXIT_GRACE_S = 3.0  # at kernel exit jupyter_client waits ~5 s before it kills us


KEEP_LOGS = 100  # launch logs kept in the log folder; older ones go


def _prune_logs(log_dir: Path, keep: int = KEEP_LOGS) -> None:
    try:
        logs = sorted(log_dir.glob("*.log"), key=lambda path: path.stat().st_mtime)
    except OSError:
        return
    for old in logs[:-keep] if keep else logs:
        try:
            old.unlink()
        except OSError:
            pass  # a kept server's log may be open elsewhere; harmless to leave


def _in_kernel() -> bool:
    shell_module = sys.modules.get("IPython")
    if shell_module is None:
        return False
    try:
        shell = shell_module.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


class ServerManager:
    """Starts and tracks servers for one kernel. See the module docstring."""

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
    ) -> None:
        self.registry = Registry(Path(registry_dir) if registry_dir is not None else None)
        self.log_dir = Path(log_dir) if log_dir is not None else self.registry.directory / "logs"
        self.vllm_executable = vllm_executable or os.environ.get("VOMNI_VLLM_EXECUTABLE") or "vllm"
        self.nvidia_smi = nvidia_smi
        self.host = host
        self.default_port = default_port
        self._servers: dict[str, Server] = {}
        self._default: str | None = None
        self._lock = threading.RLock()
        self._owner_pid = os.getpid()
        self._owner_started = process_started(self._owner_pid) or time.time()
        if register_atexit:
            atexit.register(self.shutdown)

    # ---- lookup -------------------------------------------------------------------------------

    @property
    def servers(self) -> list[Server]:
        return list(self._servers.values())

    def _match(self, key: str) -> Server | None:
        key = key.strip()
        by_name = self._servers.get(key)
        if by_name is not None:
            return by_name
        lowered = key.lower().rstrip("/")
        for server in self._servers.values():
            candidates = {server.model.lower(), server.url.lower(), str(server.port), str(server.pid)}
            if lowered in candidates or server.model.lower().rsplit("/", 1)[-1] == lowered:
                return server
        return None

    def get(self, name: str | None = None) -> Server:
        """The server called ``name`` (name, model id, short model name, URL, port or pid), or the default."""
        if name is None:
            return self.server_for(None)
        found = self._match(name)
        if found is None:
            raise ServerManagerError(f"no server {name!r} here; running: {self._names_text()}")
        return found

    def _names_text(self) -> str:
        return ", ".join(self._servers) or "none (start one with %omni_server start MODEL, --sim without a GPU)"

    def server_for(self, model: str | None = None) -> Server:
        """The server that serves ``model``; without a model, the default (``use``) or the only one."""
        with self._lock:
            if model is None:
                if self._default in self._servers:
                    return self._servers[self._default]
                if len(self._servers) == 1:
                    return next(iter(self._servers.values()))
                if not self._servers:
                    raise ServerManagerError(
                        "no server is running; start one with %omni_server start MODEL (add --sim without a GPU)"
                    )
                raise ServerManagerError(
                    f"several servers run ({self._names_text()}); pick one with %omni_server use NAME or --server NAME"
                )
            found = self._match(model)
            if found is None:
                raise ServerManagerError(
                    f"no server serves {model!r}; running: {self._names_text()}. "
                    f"Start it with %omni_server start {model}"
                )
            return found

    def url_for(self, model: str | None = None) -> str:
        return self.server_for(model).url

    def use(self, name: str) -> Server:
        """Make ``name`` the default server for requests that name no model."""
        server = self.get(name)
        self._default = server.name
        return server

    @property
    def default_name(self) -> str | None:
        return self._default if self._default in self._servers else None

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
        reporter: StartReporter | None = None,
    ) -> Server:
        """Start ``vllm serve MODEL --omni`` (or vomni-sim with ``sim=True``) and wait until /health is 200.

        ``port``: None or "auto" = 8091 or the next free port; a number = exactly that (PortInUseError
        when taken). ``api_key``: "auto" makes one. A healthy server with the same model and arguments
        (here, or kept/orphaned by another kernel) is reused. ``keep=True``: it outlives this kernel.
        Interrupting the wait (Ctrl-C, the kernel's stop button) stops the half-started server.
        """
        if not model or not model.strip():
            raise InvalidRequestError("start needs a model id, e.g. Tongyi-MAI/Z-Image-Turbo")
        model = model.strip()
        if timeout is not None and not timeout > 0:
            raise InvalidRequestError(f"--timeout takes seconds above 0; got {timeout:g}")
        wanted_port = parse_port(port)
        spec = LaunchSpec(
            model=model,
            kind="sim" if sim else "vllm",
            gpus=parse_gpus(gpus),
            extra_args=check_extra_args(extra_args),
            keyed=api_key is not None,
        )
        if reporter is None and _in_kernel():
            from vomni_nb.display import StartStatusLine

            reporter = StartStatusLine()
        with self._lock:
            same_model = [s for s in self._servers.values() if s.model == model and s.owned and s.alive()]
            reused = self._reuse(spec, wanted_port, api_key, keep)
            if reused is not None:
                if name:
                    self._rename(reused, name)
                if reporter is not None:
                    reporter.done(reused, reused=True)
                return reused
            key = secrets.token_urlsafe(24) if api_key == "auto" else api_key
            taken = self._servers.get(name or model)
            if taken is not None:
                self._stop_server(taken)  # one name, one server
            # Say so when a running server gave way: it was not what the user asked to stop.
            replaced = [f"{s.url} (pid {s.pid})" for s in same_model if s.run is not None and not s.alive()]
            note = f"replaced the server at {', '.join(replaced)}, started with other arguments" if replaced else ""
            server = Server(
                manager=self, name=name or model, model=model, kind=spec.kind, host=self.host,
                owned=True, keep=keep, api_key=key, spec=spec,
            )
            self._launch(server, wanted_port, timeout, reporter, note=note)
            self._servers[server.name] = server
            return server

    def _rename(self, server: Server, name: str) -> None:
        self._servers.pop(server.name, None)
        server.name = name
        self._servers[name] = server

    def _reuse(self, spec: LaunchSpec, port: int | None, api_key: str | None, keep: bool) -> Server | None:
        """A healthy server already serving ``spec`` (ours, or kept/orphaned in the registry)."""
        for server in list(self._servers.values()):
            if server.model != spec.model or server.kind == "remote":
                continue
            fits = (server.spec == spec and (port is None or server.port == port)
                    and key_fits(server.api_key, api_key))
            if fits and server.alive() and health_code(server.url) == 200:
                server.reused = True
                if keep and not server.keep:
                    self._set_keep(server)
                return server
            # Same model, other arguments (or dead): one model, one server, so this one gives way.
            self._stop_server(server)
        return self._reuse_from_registry(spec, port, api_key, keep)

    def _reuse_from_registry(self, spec: LaunchSpec, port: int | None, api_key: str | None, keep: bool) -> Server | None:
        adopted: Server | None = None
        for entry in self.registry.prune_dead():
            if entry.owner_pid == self._owner_pid or entry.owner_alive() and not entry.keep:
                continue  # ours (already handled) or another live kernel's private server
            fits = (adopted is None and entry.identity == spec.identity() and (port is None or entry.port == port)
                    and key_fits(entry.api_key, api_key) and health_code(entry.url) == 200)
            if fits:
                adopted = self._adopt(entry, spec, keep)
            elif not entry.keep:
                # An orphan: its kernel died and the watchdog did not get to it. End it.
                launch.terminate_group(entry.pgid, grace=STOP_GRACE_S)
                self.registry.remove(entry.id)
        return adopted

    def _adopt(self, entry: Entry, spec: LaunchSpec, keep: bool) -> Server:
        keep = keep or entry.keep
        run = Run(pid=entry.pid, pgid=entry.pgid, pid_started=entry.pid_started, port=entry.port,
                  log_path=Path(entry.log_path), started_at=entry.started_at, registry_id=entry.id)
        server = Server(manager=self, name=spec.model, model=spec.model, kind=spec.kind, host=entry.host,
                        owned=True, keep=keep, api_key=entry.api_key, spec=spec, run=run)
        if not keep:
            run.watchdog = launch.spawn_watchdog(self._owner_pid, entry.pgid)
            self.registry.replace(self._entry_for(server))
        server.reused = True
        self._servers[server.name] = server
        return server

    def _set_keep(self, server: Server) -> None:
        server.keep = True
        if server.run is not None and server.run.watchdog is not None:
            server.run.watchdog.terminate()
            server.run.watchdog.wait(5)
            server.run.watchdog = None
        self.registry.replace(self._entry_for(server))

    def _entry_for(self, server: Server) -> Entry:
        assert server.run is not None and server.spec is not None
        run = server.run
        return Entry(
            id=run.registry_id or f"{run.pid}-{run.pid_started:.3f}",
            pid=run.pid, pgid=run.pgid, pid_started=run.pid_started, host=server.host, port=run.port,
            model=server.model, kind=server.kind, args=server.spec.extra_args, identity=server.spec.identity(),
            owner_pid=self._owner_pid, owner_started=self._owner_started, started_at=run.started_at,
            keep=server.keep, log_path=str(run.log_path), api_key=server.api_key,
        )

    def _choose_port(self, wanted: int | None) -> int:
        taken = frozenset(s.port for s in self._servers.values() if s.port is not None)
        if wanted is None:
            return launch.find_free_port(self.host, self.default_port, avoid=taken)
        state = launch.port_state(self.host, wanted)
        if state == "free":
            return wanted
        holder = next((e for e in self.registry.entries() if e.port == wanted and e.alive()), None)
        who = (f"vomni_nb's server for {holder.model} (pid {holder.pid}{', kept' if holder.keep else ''}); "
               f"stop it with %omni_server stop {holder.model}") if holder else "another program"
        how = "a server answers there" if state == "listening" else "a socket is bound to it"
        raise PortInUseError(
            f"port {wanted} on {self.host} is in use ({how}): held by {who}. Use --port auto to take the next free port."
        )

    def _launch(self, server: Server, wanted_port: int | None, timeout: float | None, reporter: StartReporter | None,
                note: str = "") -> None:
        spec = server.spec
        assert spec is not None
        started = time.monotonic()
        try:
            if spec.kind == "vllm":
                vllm = shutil.which(self.vllm_executable)
                if vllm is None:
                    raise ServerStartError(
                        f"`{self.vllm_executable}` is not installed here: pip install vllm-omni, or use --sim",
                        cause="the vllm command was not found on PATH",
                        advice="pip install vllm vllm-omni on a GPU machine, or add --sim for the CPU simulator.",
                    )
                check_gpus(spec.gpus, self.nvidia_smi)
            else:
                vllm = self.vllm_executable
            port = self._choose_port(wanted_port)
            _prune_logs(self.log_dir)
            stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
            log_path = self.log_dir / f"{log_file_stem(server.model)}-{port}-{stamp}.log"
            command = build_command(spec, self.host, port, vllm=vllm)
            process = launch.spawn_server(command, env=build_env(dict(os.environ), spec, server.api_key), log_path=log_path)
        except ServerManagerError as exc:
            if reporter is not None:
                reporter.failed(server.model, exc, time.monotonic() - started)
            raise
        run = Run(pid=process.pid, pgid=process.pid, pid_started=process_started(process.pid) or time.time(),
                  port=port, log_path=log_path, started_at=time.time(), process=process)
        server.run = run
        if not server.keep:
            run.watchdog = launch.spawn_watchdog(self._owner_pid, run.pgid)
        entry = self._entry_for(server)
        run.registry_id = entry.id
        self.registry.add(entry)
        limit = timeout or (SIM_TIMEOUT_S if spec.kind == "sim" else VLLM_TIMEOUT_S)
        try:
            wait_ready(server, started, limit, reporter)
        except BaseException as exc:
            # Interrupted or failed: a half-started server would hold a GPU and a port for nothing.
            self._end_run(server)
            if reporter is not None:
                shown = exc if isinstance(exc, ServerManagerError) else ServerStartError(
                    "start interrupted", cause="interrupted; the half-started server was stopped")
                reporter.failed(server.model, shown, time.monotonic() - started)
            raise
        run.ready_s = time.monotonic() - started
        if reporter is not None:
            reporter.done(server, reused=False, note=note)

    # ---- attach -------------------------------------------------------------------------------

    def attach(self, url: str, *, name: str | None = None, api_key: str | None = None) -> Server:
        """Use a server started elsewhere; its model is read from /v1/models. Never stopped by us."""
        scheme, host, port, base = split_url(url)
        url = f"{scheme}://{host}:{port}{base}"
        code = health_code(url, timeout=5.0)
        if code is None:
            raise ServerManagerError(f"nothing answers at {url}/health; check the URL and that the server is up.")
        if code != 200:
            raise ServerManagerError(f"{url}/health answered {code}: the server is not healthy (still loading or dead).")
        # The same fallbacks as OmniClient, which later resolves the key itself (so only an explicit one is kept).
        models = served_models(url, api_key or os.environ.get("VOMNI_API_KEY") or os.environ.get("VLLM_API_KEY"))
        if not models:
            raise ServerManagerError(f"{url}/v1/models lists no model.")
        server = Server(manager=self, name=name or models[0], model=models[0], kind="remote", host=host,
                        owned=False, api_key=api_key, url=url)
        with self._lock:
            old = self._servers.get(server.name)
            if old is not None:
                self._stop_server(old)
            self._servers[server.name] = server
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
                server = self._match(target)
            if server is None:
                return self._stop_registry_entry(str(target))
            return self._stop_server(server)

    def _stop_registry_entry(self, target: str) -> str:
        for entry in self.registry.prune_dead():
            if target in (entry.model, str(entry.port), str(entry.pid), entry.url, entry.model.rsplit("/", 1)[-1]):
                launch.terminate_group(entry.pgid, grace=STOP_GRACE_S)
                self.registry.remove(entry.id)
                return f"stopped {entry.model} (pid {entry.pid}, port {entry.port})"
        raise ServerManagerError(f"no server {target!r}; running: {self._names_text()}")

    def _stop_server(self, server: Server) -> str:
        self._servers.pop(server.name, None)
        if self._default == server.name:
            self._default = None
        if not server.owned:
            return f"forgot {server.name} at {server.url} (attached: started elsewhere, so not stopped)"
        pid = server.pid
        self._end_run(server)
        return f"stopped {server.name} (pid {pid})"

    def _end_run(self, server: Server, grace: float = STOP_GRACE_S) -> None:
        run = server.run
        if run is None:
            return
        launch.terminate_group(run.pgid, run.process, grace=grace)
        if run.watchdog is not None:
            # Its job is done with the group gone; end it now rather than wait for its next look.
            run.watchdog.terminate()
            run.watchdog.wait(2.0)
        if run.registry_id:
            self.registry.remove(run.registry_id)

    def restart(self, target: Server | str | None = None, *, timeout: float | None = None,
                reporter: StartReporter | None = None) -> Server:
        """Stop and start again with the same model, arguments, port and key (a new pid)."""
        with self._lock:
            server = target if isinstance(target, Server) else self.get(target) if target else self.server_for(None)
            if not server.owned or server.spec is None:
                raise ServerManagerError(f"{server.name} was started elsewhere (attached); restart it there.")
            port = server.port
            self._end_run(server)
            server.run = None
            server.reused = False
            if reporter is None and _in_kernel():
                from vomni_nb.display import StartStatusLine

                reporter = StartStatusLine()
            try:
                self._launch(server, port, timeout, reporter)
            except BaseException:
                self._servers.pop(server.name, None)
                raise
            self._servers[server.name] = server
            return server

    def list_servers(self) -> list[ServerStatus]:
        """Our servers, plus live servers of other kernels from the registry (kept or orphaned)."""
        statuses = [server.status() for server in self._servers.values()]
        ours = {server.pid for server in self._servers.values()}
        for entry in self.registry.prune_dead():
            if entry.pid in ours:
                continue
            code = health_code(entry.url, timeout=1.0)
            owner_alive = entry.owner_alive()
            note = f"kernel {entry.owner_pid}" if owner_alive else "" if entry.keep else "orphan"
            statuses.append(ServerStatus(
                name=entry.model, model=entry.model, url=entry.url, kind=", ".join(filter(None, (entry.kind, note))),
                state="ready" if code == 200 else "unhealthy" if code else "unreachable",
                pid=entry.pid, uptime_s=time.time() - entry.started_at, health=code, keep=entry.keep, owned=False,
            ))
        return statuses

    def shutdown(self, grace: float = EXIT_GRACE_S) -> None:
        """Stop every server this kernel owns except kept ones (runs at exit)."""
        with self._lock:
            for server in list(self._servers.values()):
                if server.owned and not server.keep and server.run is not None:
                    try:
                        self._end_run(server, grace=grace)
                    except Exception:  # at exit, one failure must not stop the others' clean-up
                        pass
                self._servers.pop(server.name, None)


_default: ServerManager | None = None
_default_lock = threading.Lock()


def default_manager() -> ServerManager:
    """This kernel's manager (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ServerManager()
        return _default


def _reset_default_for_tests(manager: ServerManager | None = None) -> Callable[[], None]:
    """Swap the default manager (tests); returns a function that puts the old one back."""
    global _default
    old, _default = _default, manager

    def restore() -> None:
        global _default
        _default = old

    return restore
