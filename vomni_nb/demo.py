"""``make demo``: start vomni-sim, then open the quickstart notebook in JupyterLab (or run it headless).

Headless mode executes the notebook with nbclient and writes HTML next to it under ``demo-output/``,
so the whole demo can be checked without a screen.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"vomni-sim exited with code {process.returncode}; see its log in the demo output folder")
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"vomni-sim did not become healthy at {url} within {timeout:.0f}s")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--model", default="Tongyi-MAI/Z-Image-Turbo")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--headless", action="store_true", help="execute the notebook and write HTML")
    parser.add_argument("--out", type=Path, default=ROOT / "demo-output", help="where logs and HTML go")
    args = parser.parse_args(argv)

    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{args.port}"
    with open(out_dir / "vomni-sim.log", "wb") as log:
        sim = subprocess.Popen(
            [sys.executable, "-m", "vomni_nb.sim", args.model, "--host", "127.0.0.1", "--port", str(args.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    os.environ["VOMNI_URL"] = url
    try:
        _wait_healthy(url, sim)
        print(f"vomni-sim serving {args.model} (simulated) at {url}")
        if args.headless:
            target = run_headless(NOTEBOOK, out_dir)
            print(f"executed {NOTEBOOK.relative_to(ROOT)} -> {target}")
            return 0
        print("opening JupyterLab; press Ctrl+C twice to stop it and the simulator")
        lab = [sys.executable, "-m", "jupyter", "lab", str(NOTEBOOK)]
        if hasattr(os, "getuid") and os.getuid() == 0:
            lab.append("--allow-root")  # containers and Binder-like images often run as root
        return subprocess.call(lab, cwd=ROOT)
    except KeyboardInterrupt:
        return 130
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()


if __name__ == "__main__":
    raise SystemExit(main())
