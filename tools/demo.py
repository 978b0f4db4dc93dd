"""``make demo``: start vomni-sim through the server manager, then open the quickstart in JupyterLab
(``make demo HEADLESS=1``: execute it and write HTML a person can open).

Rules:
1. It uses only servers it started (or, with ``--attach URL``, the one it was told to use): the
   manager takes ``--port`` (default 8091) or, when that is taken, the next free port, and the demo
   says which. It keeps its own server registry under the output folder, so it never adopts a
   server another notebook kept running.
2. It stops what it started on exit: Ctrl-C, SIGTERM, the end of the headless run, or, if this process
   is killed outright, the manager's watchdog.
3. The notebook finds the server through ``VOMNI_URL`` (and ``VOMNI_BASE_URL``, which ``OmniClient()`` reads).

Dev tooling, not part of the installed package: it needs the repository's ``notebooks/``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from vomni_nb.errors import ServerManagerError
from vomni_nb.server import Server, ServerManager

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


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


def run_headless(notebook: Path, out_dir: Path) -> Path:
    """Execute ``notebook`` in a fresh kernel (it inherits this process's environment) and write it,
    as .ipynb and .html, into ``out_dir``. Returns the HTML file."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / notebook.name)
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = out_dir / (notebook.stem + ".html")
    target.write_text(html, encoding="utf-8")
    return target


def _serve(manager: ServerManager, args: argparse.Namespace) -> Server:
    """The demo's server: attached when asked, else a vomni-sim of its own on ``--port`` or the next free one."""
    if args.attach:
        server = manager.attach(args.attach)
        print(f"attached to {server.model} at {server.url} (started elsewhere: the demo never stops it)")
        return server
    print(f"starting vomni-sim for {args.model} (simulated; no GPU needed)", flush=True)
    server = manager.start(args.model, sim=True, port="auto")
    print(f"vomni-sim serving {args.model} (simulated) at {server.url}")
    if server.port != args.port:
        print(f"port {args.port} was taken, so the demo's vomni-sim took port {server.port}")
    print(f"its log: {server.log_path}")
    return server


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
    parser.add_argument("--model", default="Tongyi-MAI/Z-Image-Turbo")
    parser.add_argument("--port", type=int, default=8091, help="the port to try first (the next free one if taken)")
    parser.add_argument("--attach", metavar="URL", help="use the server at URL instead of starting one")
    parser.add_argument("--headless", action="store_true", help="execute the notebook and write HTML")
    parser.add_argument("--out", type=Path, default=ROOT / "demo-output", help="where the HTML and server logs go")
    args = parser.parse_args(argv)
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    manager = ServerManager(registry_dir=out_dir / "servers", default_port=args.port, register_atexit=False,
                            reporter_factory=ConsoleReporter)
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    saved = {name: os.environ.get(name) for name in ("VOMNI_URL", "VOMNI_BASE_URL")}
    try:
        server = _serve(manager, args)
        os.environ["VOMNI_URL"] = os.environ["VOMNI_BASE_URL"] = server.url  # kernels started from here inherit it
        if args.headless:
            target = run_headless(NOTEBOOK, out_dir)
            print(f"executed {NOTEBOOK.relative_to(ROOT)} -> {target}")
            return 0
        return _open_lab(NOTEBOOK)
    except ServerManagerError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        manager.shutdown()
        for name, value in saved.items():  # as it was (main() also runs inside the tests' process)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":
    raise SystemExit(main())
