"""vomni-sim core numbers: start-up to ready, idle RSS, image latency, 100 concurrent small images, chat stream rate.

Run: .venv/bin/python benchmarks/sim_core.py
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(model: str, *args: str) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vomni_nb.sim", model, "--port", str(port), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "VOMNI_SIM_STORAGE": "/tmp/bench-storage"},
    )
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.01)


async def burst(url: str, count: int) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        replies = await asyncio.gather(*(
            client.post("/v1/images/generations", json={"prompt": f"tile {i}", "size": "64x64", "seed": i})
            for i in range(count)
        ))
        assert all(r.status_code == 200 for r in replies)
        return time.perf_counter() - started


def main() -> None:
    proc, url, ready = start("Tongyi-MAI/Z-Image-Turbo")
    try:
        print(f"start-up to /health 200: {ready:.2f} s")
        print(f"idle RSS: {psutil.Process(proc.pid).memory_info().rss / 2**20:.1f} MB")
        for size in ("512x512", "1024x1024"):
            started = time.perf_counter()
            reply = httpx.post(url + "/v1/images/generations", json={"prompt": "bench", "size": size, "seed": 1}, timeout=60)
            print(f"one {size} PNG: {time.perf_counter() - started:.3f} s, {len(reply.content) / 1e6:.2f} MB JSON")
        print(f"100 concurrent 64x64: {asyncio.run(burst(url, 100)):.2f} s")
        print(f"RSS after the burst: {psutil.Process(proc.pid).memory_info().rss / 2**20:.1f} MB")
    finally:
        proc.terminate()
        proc.wait()
    proc, url, _ = start("Qwen/Qwen3-Omni-30B-A3B-Instruct", "--tokens-per-second", "50")
    try:
        body = {"messages": [{"role": "user", "content": "hi"}], "modalities": ["text"], "stream": True, "max_tokens": 50}
        started = time.perf_counter()
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as reply:
            chunks = sum(1 for line in reply.iter_lines() if line.startswith("data: "))
        elapsed = time.perf_counter() - started
        tokens = chunks - 2  # minus the role-only first chunk and [DONE]
        print(f"chat stream at --tokens-per-second 50: {tokens} tokens in {elapsed:.2f} s (~{tokens / elapsed:.0f} tok/s)")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
