"""How fast the Studio's Cancel stops a slow generation: from ``studio.cancel()`` to the task being done (what
the page shows as "cancelled"), and to the server's ``[AsyncOmni] Request … aborted.`` log line.

Starts one vomni-sim image server with ``--latency 5`` on a free port, then for N rounds starts a Generate on
this process's event loop, waits ``--after`` seconds (the server is still "generating"), cancels, and times
both. The browser test (tests/widgets/test_browser_studio.py) prints the same from the click to the page.

    .venv/bin/python benchmarks/studio_cancel.py [--quick]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import _harness as harness
from _harness import Row

if TYPE_CHECKING:
    from vomni_nb.widgets import Studio

MODEL = "Tongyi-MAI/Z-Image-Turbo"


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


async def _rounds(url: str, log: Path, rounds: int, after: float) -> list[tuple[float, float]]:
    from vomni_nb.server import ServerManager
    from vomni_nb.widgets import Studio

    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio("a lighthouse at dusk", server=url, manager=ServerManager(registry_dir=tmp,
                        register_atexit=False), size="512x512", live=False)
        return [await _round(studio, log, after) for _ in range(rounds)]


def run(quick: bool = False) -> list[Row]:
    after = 1.0
    port = harness.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "sim.log"
        with open(log, "wb") as out:
            sim = subprocess.Popen([sys.executable, "-m", "vomni_nb.sim", MODEL, "--port", str(port), "--latency", "5"],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            url = f"http://127.0.0.1:{port}"
            harness.wait_healthy(url, sim)
            results = asyncio.run(_rounds(url, log, 2 if quick else 5, after))
        finally:
            sim.terminate()
            sim.wait(10)
    benchmark = f"Studio Cancel ({after:g} s into a 5 s generation)"
    return [
        harness.summary(benchmark, "cancel -> task done (page says cancelled)", [d for d, _ in results], "ms",
                        scale=1000),
        harness.summary(benchmark, "cancel -> server logs the abort", [a for _, a in results], "ms", scale=1000),
    ]


if __name__ == "__main__":
    harness.main(run)
