"""``%omni_server``: start, watch and stop servers. Thin: parse the line, call the manager, display.

``%omni_server start MODEL [--port N|auto] [--gpus 0,1] [--timeout S] [--sim] [--api-key auto|K] [--keep]
[--name NAME] [--another] [-- extra vllm args] | status [NAME] | logs [NAME] [-n N] | stop [NAME] |
restart [NAME] | list | attach URL [--name NAME] [--api-key K] | use NAME``

``%load_ext vomni_nb`` stays light: this module imports IPython's magic machinery, ``errors``,
``display`` and the magics' shared settings only; the server manager (and with it psutil) is imported when a magic runs, and the
client (httpx, PIL) only when a server's ``client()`` is asked for. ``tests/magics`` checks it.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from vomni_nb import _advice
from vomni_nb.display import StartStatusLine, bundle, show, status_table
from vomni_nb.errors import InvalidRequestError, ServerManagerError, ServerStartError, redact
from vomni_nb.magics._common import VomniMagics, keys_given

if TYPE_CHECKING:
    from vomni_nb.server import Server, ServerManager
    from vomni_nb.widgets import ServerPanel

__all__ = ["ServerMagics", "load_ipython_extension", "ServerCommandError"]

_ACTIONS = ("start", "status", "logs", "stop", "restart", "list", "attach", "use", "panel")


class ServerCommandError(Exception):
    """A failed server command, shown as cause + advice + log tail instead of a traceback."""

    def __init__(self, error: ServerManagerError) -> None:
        super().__init__(str(error))
        self.error = error

    def _render_traceback_(self) -> list[str]:
        error = self.error
        lines = [f"\x1b[31m{type(error).__name__}\x1b[0m: {str(error).splitlines()[0]}"]
        if isinstance(error, ServerStartError):
            if error.cause and error.cause not in lines[0]:
                lines.append(f"Cause: {error.cause}")
            if error.advice:
                lines.append(f"Advice: {error.advice}")
            lines.extend(f"Before this start, it {note}." for note in error.before)
            if error.log_tail:
                lines.append("--- last log lines" + (f" ({error.log_path})" if error.log_path else "") + " ---")
                lines.extend(error.log_tail.splitlines())
        else:
            lines.extend(str(error).splitlines()[1:])
        return lines


def _split_extra(line: str) -> tuple[str, list[str]]:
    """``start M --port 1 -- --foo 2`` -> (``start M --port 1``, ``["--foo", "2"]``)."""
    words = shlex.split(line)
    if "--" not in words:
        return line, []
    cut = words.index("--")
    return shlex.join(words[:cut]), words[cut + 1 :]


@magics_class
class ServerMagics(VomniMagics):
    """``%omni_server`` (``%load_ext vomni_nb``)."""

    @no_var_expand
    @magic_arguments()
    @argument("action", choices=_ACTIONS, help="what to do")
    @argument("target", nargs="?", default=None, help="MODEL for start, URL for attach, NAME otherwise")
    @argument("--port", default=None, help="a port number, or 'auto' (default: 8091 or the next free one)")
    @argument("--gpus", default=None, help="GPU indices, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES)")
    @argument("--timeout", type=float, default=None, help="seconds to wait for /health (default 60 sim, 1200 vllm)")
    @argument("--sim", action="store_true", help="run vomni-sim, the CPU simulator, instead of vLLM-Omni")
    @argument("--api-key", default=None, help="'auto' makes a key (passed by environment, never shown)")
    @argument("--keep", action="store_true", help="keep the server running after the kernel exits")
    @argument("--name", default=None, help="a name for the server (default: its model id)")
    @argument("--another", action="store_true",
              help="start a real model even though another kernel serves it (a second copy)")
    @argument("-n", "--lines", type=int, default=40, help="log lines to show (logs)")
    @line_magic
    def omni_server(self, line: str) -> Server | ServerPanel | None:
        """Start, watch and stop vLLM-Omni servers; everything after `--` goes to `vllm serve`.

        ``start``, ``restart`` and ``attach`` return the ``Server`` (``server = %omni_server start ...``;
        ``server.client()`` then talks to it). ``panel`` returns a ``ServerPanel``: a live table of this
        kernel's servers with Stop and Restart, refreshed every 2 s (``panel.close()`` leaves it static).

        Examples::

            %omni_server start Tongyi-MAI/Z-Image-Turbo --sim       # CPU simulator, no GPU needed
            %omni_server start Qwen/Qwen-Image --gpus 0 -- --vae-use-tiling
            %omni_server list          /  status [NAME]  /  logs [NAME] -n 100
            %omni_server use Qwen/Qwen-Image        # the default for requests naming no model
            %omni_server attach http://gpu-box:8091 --name remote
            %omni_server restart [NAME]  /  stop [NAME]
            %omni_server panel
        """
        try:
            head, extra = _split_extra(line)
        except ValueError as exc:  # unbalanced quotes
            raise UsageError(f"cannot parse {redact(line)!r}: {exc}") from exc  # the line may hold --api-key K
        try:
            args = parse_argstring(self.omni_server, head)
        except UsageError as exc:  # argparse quotes what it refused: never a key given on the line
            raise UsageError(redact(str(exc), *keys_given(head.split()))) from None
        if extra and args.action not in ("start",):
            raise UsageError("extra arguments after `--` only go with start")
        manager = self._manager()
        try:
            return self._run(manager, args, extra)
        except InvalidRequestError as exc:
            raise UsageError(str(exc)) from exc
        except ServerManagerError as exc:
            raise ServerCommandError(exc) from exc

    def _manager(self) -> ServerManager:
        """The kernel's default manager, with the live status line installed (in a kernel, whose front
        end updates one output in place; a terminal would print every update on a line of its own)."""
        from vomni_nb.server import default_manager

        manager = default_manager()
        if manager.reporter_factory is None and getattr(self.shell, "kernel", None) is not None:
            manager.reporter_factory = StartStatusLine
        return manager

    def _run(self, manager: ServerManager, args: Any, extra: list[str]) -> Server | ServerPanel | None:
        action = args.action
        if action == "panel":
            if args.target:
                raise UsageError("%omni_server panel takes no NAME: it shows every server of this kernel")
            from vomni_nb.widgets import ServerPanel

            return ServerPanel(manager)
        if action in ("start", "attach", "use") and not args.target:
            raise UsageError(f"%omni_server {action} needs a {'URL' if action == 'attach' else 'MODEL' if action == 'start' else 'NAME'}")
        if action == "start":
            return manager.start(args.target, port=args.port, gpus=args.gpus, timeout=args.timeout, sim=args.sim,
                                 api_key=args.api_key, extra_args=extra, keep=args.keep, name=args.name,
                                 another=args.another)
        if action == "attach":
            server = manager.attach(args.target, name=args.name, api_key=args.api_key)
            show(f"attached {server.name} at {server.url} (model {server.model}; started elsewhere, never stopped here)")
            return server
        if action in ("restart", "stop", "logs") and not args.target:
            _check_one_is_meant(manager, action)
        if action == "restart":
            return manager.restart(args.target)
        if action == "use":
            server = manager.use(args.target)
            show(f"default server: {server.name} at {server.url}")
        elif action == "stop":
            show(manager.stop(args.target))
        elif action == "logs":
            server = manager.get(args.target)
            show(server.logs(args.lines) or f"(no log here for {server.name}: it was started elsewhere)")
        elif action == "status":
            servers = [manager.get(args.target)] if args.target else manager.servers
            if not servers:
                show(f"no servers ({_advice.START_ONE})")
            for server in servers:
                show(server.status().line())
        elif action == "list":
            self._list(manager)
        return None

    def _list(self, manager: ServerManager) -> None:
        from IPython.display import display

        rows = []
        default = manager.default_name
        for status in manager.list_servers():
            mark = "*" if status.name == default else ""
            rows.append({"name": status.name + mark, "state": status.state, "url": status.url,
                         "pid": status.pid or "", "kind": status.kind + (", kept" if status.keep else "")})
        display(status_table(rows, ["name", "state", "url", "pid", "kind"]) if rows else bundle("no servers"), raw=True)
        for problem in manager.registry.problems:  # rows we skipped: say so, or a planted row goes unseen
            show(f"note: {problem}")


def load_ipython_extension(ipython: Any) -> None:
    """IPython calls this the first time one of these magics is used (``vomni_nb.magics`` declares them lazily)."""
    from vomni_nb.magics import add_family

    add_family(ipython, ServerMagics)


def _check_one_is_meant(manager: ServerManager, action: str) -> None:
    """No NAME given: fine with one server or a default; with several, the advice names this very command."""
    servers = manager.servers
    if len(servers) > 1 and manager.default_name not in {server.name for server in servers}:
        names = ", ".join(server.name for server in servers)
        raise UsageError(_advice.name_which(action, names))
