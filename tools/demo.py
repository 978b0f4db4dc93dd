"""``make demo``: start the quickstart's simulators through the server manager, then open the quickstart
in JupyterLab (``make demo HEADLESS=1``: execute it and write HTML a person can open).

Rules:
1. It starts, ahead, the simulators the notebook's own ``%omni_server start MODEL --sim`` lines ask for
   (read from the notebook), as kept servers in a registry of its own, so the notebook's kernel reuses
   them at once and never adopts a server another notebook kept running. The manager takes ``--port``
   (default 8091) or, when that is taken, the next free port, and the demo says which.
2. It uses only servers it started (or, with ``--attach URL``, the one it was told to use, which the
   notebook's plain ``OmniClient()`` reaches through ``VOMNI_BASE_URL``).
3. It stops what it started on exit: Ctrl-C, SIGTERM, the end of the headless run. Kept servers outlive
   their starter by design, so the demo stops each one itself; if it is killed outright (SIGKILL), the
   next ``make demo`` finds them in its registry and reuses them.

Dev tooling, not part of the installed package: it needs the repository's ``notebooks/``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from vomni_nb.errors import ServerManagerError
from vomni_nb.server import Server, ServerManager

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_quickstart.ipynb"
# What the kernels started from here inherit (restored afterwards: main() also runs inside the tests' process).
_KERNEL_ENV = ("VOMNI_URL", "VOMNI_BASE_URL", "VOMNI_REGISTRY_DIR")


class ConsoleReporter:
    """A ``StartReporter`` for a terminal: one line per phase change, then the outcome."""

    def __init__(self) -> None:
        self._last = ""

    def phase(self, model: str, phase: str, elapsed: float) -> None:
        if phase != self._last:
            self._last = phase
            print(f"  {model}: {phase} ({elapsed:.1f} s)", flush=True)

    def done(self, server: Server, *, reused: bool, note: str = "") -> None:
        print(f"  {server.model}: ready in {server.ready_s or 0:.1f} s" + (f" ({note})" if note else ""), flush=True)

    def failed(self, model: str, error: BaseException, elapsed: float) -> None:
        print(f"  {model}: start failed after {elapsed:.1f} s", flush=True)


def sim_models(notebook: Path) -> list[str]:
    """The models the notebook starts with ``%omni_server start MODEL ... --sim``, in order (pure)."""
    import nbformat

    models: list[str] = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            found = re.search(r"%omni_server\s+start\s+(.*)", line)
            if found is None:
                continue
            words = shlex.split(found.group(1).split("#", 1)[0])
            if words and "--sim" in words and words[0] not in models:
                models.append(words[0])
    return models


def run_headless(notebook: Path, out_dir: Path, cwd: Path | None = None) -> Path:
    """Execute ``notebook`` in a fresh kernel (it inherits this process's environment) whose working
    directory is ``cwd`` (default ``out_dir``, so files the notebook writes land beside its HTML), and
    write it, as .ipynb and .html, into ``out_dir``. Returns the HTML file."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    workdir = cwd or out_dir
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    nbformat.write(nb, out_dir / notebook.name)
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = out_dir / (notebook.stem + ".html")
    target.write_text(html, encoding="utf-8")
    return target


def _serve(manager: ServerManager, args: argparse.Namespace, models: list[str]) -> list[Server]:
    """The demo's servers: a vomni-sim of its own for each model, from ``--port`` or the next free one
    (kept, so the notebook's kernel reuses them), and the one it was told to attach, if any."""
    servers: list[Server] = []
    if args.attach:
        attached = manager.attach(args.attach)
        print(f"attached to {attached.model} at {attached.url} (started elsewhere: the demo never stops it)")
        servers.append(attached)
    for model in models:
        print(f"starting vomni-sim for {model} (simulated; no GPU needed)", flush=True)
        server = manager.start(model, sim=True, port="auto", keep=True)
        print(f"vomni-sim serving {model} (simulated) at {server.url}")
        if len(servers) == (1 if args.attach else 0) and server.port != args.port:
            print(f"port {args.port} was taken, so the demo's vomni-sim took port {server.port}")
        print(f"its log: {server.log_path}")
        servers.append(server)
    return servers


def _stop_all(manager: ServerManager, servers: list[Server]) -> None:
    """Stop the demo's own servers (kept ones too: nothing else will) and forget attached ones."""
    for server in servers:
        try:
            print(f"make demo: {manager.stop(server)}")
        except ServerManagerError as exc:  # one failure must not leave the others running
            print(f"make demo: could not stop {server.name}: {exc}", file=sys.stderr)
    manager.shutdown()


def _open_lab(notebook: Path) -> int:
    """JupyterLab on ``notebook`` until it exits (its own Ctrl-C, twice, stops it)."""
    lab = [sys.executable, "-m", "jupyter", "lab", str(notebook)]
    if hasattr(os, "getuid") and os.getuid() == 0:
        lab.append("--allow-root")  # containers and Binder-like images often run as root
    print("opening JupyterLab; press Ctrl+C twice to stop it and the demo's servers", flush=True)
    process = subprocess.Popen(lab, cwd=ROOT)
    # Ctrl-C reaches JupyterLab too (same terminal): it asks to confirm, so the demo waits for it to end.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return process.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        if process.poll() is None:  # SIGTERM to the demo: end JupyterLab (and so its kernels) first
            process.terminate()
            process.wait(30)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through `finally`, which stops the servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="the notebook to open (default: the quickstart)")
    parser.add_argument("--port", type=int, default=8091, help="the port to try first (the next free one if taken)")
    parser.add_argument("--attach", metavar="URL", help="use the server at URL instead of starting one")
    parser.add_argument("--headless", action="store_true", help="execute the notebook and write HTML")
    parser.add_argument("--out", type=Path, default=ROOT / "demo-output", help="where the HTML and server logs go")
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    manager = ServerManager(registry_dir=out_dir / "servers", default_port=args.port, register_atexit=False,
                            reporter_factory=ConsoleReporter)
    notebook: Path = args.notebook.resolve()
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    saved = {name: os.environ.get(name) for name in _KERNEL_ENV}
    servers: list[Server] = []
    try:
        servers = _serve(manager, args, sim_models(notebook))
        # Kernels started from here inherit these: the demo's registry (so `%omni_server start` reuses its
        # servers) and, for a plain OmniClient(), the attached server or the first one.
        os.environ["VOMNI_REGISTRY_DIR"] = str(manager.registry.directory)
        if servers:
            os.environ["VOMNI_URL"] = os.environ["VOMNI_BASE_URL"] = servers[0].url
        if args.headless:
            target = run_headless(notebook, out_dir)
            print(f"executed {notebook.name} -> {target}")
            return 0
        return _open_lab(notebook)
    except ServerManagerError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_all(manager, servers)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":
    raise SystemExit(main())
