"""vomni-sim's capacity on this machine, so the cost of the test suite is known: start-up to ready, idle
memory, small image requests per second, and how many streams it keeps at their set rate.

The load comes from this process (raw ``httpx.AsyncClient``), on the same cores as the simulator, as in the
tests. Streams: K chats at once, each 100 tokens at ``--tokens-per-second 50`` (2 s when on time); the
row is the median stream's achieved rate, against one stream alone.

    .venv/bin/python benchmarks/sim_core.py [--quick]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import psutil

import _harness as harness
from _harness import IMAGE_MODEL, OMNI_MODEL, Row

RATE = 50.0
TOKENS = 100


def _start_up(runs: int) -> tuple[list[float], float]:
    """Seconds from Popen to /health 200, and the idle RSS (MB) of the last one."""
    times, rss = [], 0.0
    for _ in range(runs):
        port = harness.free_port()
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "vomni_nb.sim", IMAGE_MODEL, "--port", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env={**os.environ, "VOMNI_SIM_STORAGE": ""})
        try:
            harness.wait_healthy(f"http://127.0.0.1:{port}", process, poll=0.01)
            times.append(time.perf_counter() - started)
            rss = psutil.Process(process.pid).memory_info().rss / 2**20
        finally:
            process.terminate()
            process.wait(10)
    return times, rss


async def _images(url: str, count: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(index: int) -> None:
            async with limit:
                reply = await client.post("/v1/images/generations",
                                          json={"prompt": f"tile {index}", "size": "64x64", "seed": index})
                reply.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


async def _streams(url: str, count: int) -> list[float]:
    """Each stream's tokens per second, from its first token to its last."""
    body = {"messages": [{"role": "user", "content": "hi"}], "modalities": ["text"], "stream": True}
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=count)) as client:
        async def one() -> float:
            stamps = []
            async with client.stream("POST", "/v1/chat/completions", json=body) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("data: {") and json.loads(line[6:])["choices"]:
                        stamps.append(time.perf_counter())
            return (len(stamps) - 1) / (stamps[-1] - stamps[0])

        return list(await asyncio.gather(*(one() for _ in range(count))))


def run(quick: bool = False) -> list[Row]:
    rows: list[Row] = []
    starts, rss = _start_up(2 if quick else 5)
    rows.append(harness.summary("vomni-sim: start-up", "Popen -> /health 200", starts, "s",
                                note=f"idle RSS {rss:.0f} MB"))
    with harness.sim(IMAGE_MODEL) as url:
        asyncio.run(_images(url, 20, 8))  # warm-up
        rates = [asyncio.run(_images(url, 60 if quick else 200, 16)) for _ in range(1 if quick else 3)]
    rows.append(harness.summary("vomni-sim: small images", "64x64 PNG, 16 in flight", rates, "req/s",
                                note=f"{60 if quick else 200} requests per run"))
    benchmark = f"vomni-sim: concurrent streams at {RATE:g} tok/s"
    with harness.sim(OMNI_MODEL, "--reply-tokens", str(TOKENS), "--tokens-per-second", str(RATE)) as url:
        for count in (1, 50) if quick else (1, 50, 200):
            achieved = asyncio.run(_streams(url, count))
            rows.append(harness.summary(benchmark, f"{count} stream{'s' if count > 1 else ''}", achieved, "tok/s",
                                        baseline=count == 1,
                                        note=f"slowest {min(achieved):.1f} tok/s" if count > 1 else ""))
    return rows


if __name__ == "__main__":
    harness.main(run)
