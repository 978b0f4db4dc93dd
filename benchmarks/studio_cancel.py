"""How fast the Studio's Cancel stops a slow generation: from ``studio.cancel()`` to the task being done (what
the page shows as "cancelled"), and to the server's ``[AsyncOmni] Request … aborted.`` log line.

Starts one vomni-sim image server with ``--latency 5`` on a free port, then for N rounds starts a Generate on
this process's event loop, waits ``--after`` seconds (the server is still "generating"), cancels, and times
both. The browser test (tests/widgets/test_browser_studio.py) prints the same from the click to the page.

    .venv/bin/python benchmarks/studio_cancel.py [--rounds 5] [--after 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

os.environ.setdefault("VOMNI_HISTORY", "off")  # nothing is made, but keep the user's history out of it

from vomni_nb.server import ServerManager  # noqa: E402
from vomni_nb.widgets import Studio  # noqa: E402

MODEL = "Tongyi-MAI/Z-Image-Turbo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _round(studio: Studio, log: Path, after: float) -> tuple[float, float]:
    aborted_before = log.read_text().count("aborted.")
    task = studio.generate()
    await asyncio.sleep(after)
    started = time.perf_counter()
    studio.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    done = time.perf_counter() - started
    while log.read_text().count("aborted.") == aborted_before:
        await asyncio.sleep(0.005)
    return done, time.perf_counter() - started


async def _main(url: str, log: Path, rounds: int, after: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio("a lighthouse at dusk", server=url, manager=ServerManager(registry_dir=tmp,
                        register_atexit=False), size="512x512", live=False)
        results = [await _round(studio, log, after) for _ in range(rounds)]
    done = [1000 * d for d, _ in results]
    aborted = [1000 * a for _, a in results]
    print(f"cancel -> task done (page says 'cancelled'): median {statistics.median(done):.1f} ms, max {max(done):.1f} ms")
    print(f"cancel -> server logs the abort:             median {statistics.median(aborted):.1f} ms, "
          f"max {max(aborted):.1f} ms   ({rounds} rounds, cancelled {after:g} s into a 5 s generation)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--after", type=float, default=1.0)
    args = parser.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "sim.log"
        with open(log, "wb") as out:
            sim = subprocess.Popen([sys.executable, "-m", "vomni_nb.sim", MODEL, "--port", str(port), "--latency", "5"],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or sim.poll() is not None:
                    raise SystemExit(f"vomni-sim did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.1)
            asyncio.run(_main(url, log, args.rounds, args.after))
        finally:
            sim.terminate()
            sim.wait(10)


if __name__ == "__main__":
    main()
