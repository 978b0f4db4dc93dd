"""How a sweep scales out over replicas: ``vomni_nb.sweep`` of N seeds on one vomni-sim, then on two
replicas of the same model, each with ``--latency S`` standing for GPU time (so the numbers measure the
scheduling, not this machine's CPU). Also the weight of a 1024x1024 sweep's output in a notebook.

    .venv/bin/python benchmarks/sweep_replicas.py [--seeds 16] [--latency 0.5] [--concurrency 2]

Expected: two replicas take about half the time of one (each server runs ``concurrency`` requests at once).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time

import httpx

MODEL = "Tongyi-MAI/Z-Image-Turbo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sim(latency: float, log: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "vomni_nb.sim", MODEL, "--host", "127.0.0.1", "--port",
                                    str(port), "--latency", str(latency)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"vomni-sim did not start; see {log}")


def timed_sweep(urls: list[str], seeds: int, concurrency: int, size: str) -> tuple[float, object]:
    import vomni_nb
    from vomni_nb.server import ServerManager, set_default_manager

    with tempfile.TemporaryDirectory() as registry:
        manager = ServerManager(registry_dir=registry, register_atexit=False)
        with set_default_manager(manager):
            for url in urls:
                manager.attach(url)
            started = time.perf_counter()
            grid = vomni_nb.sweep("a lighthouse at dusk", x=("seed", list(range(1, seeds + 1))), size=size,
                                  concurrency=concurrency, status=False)
            return time.perf_counter() - started, grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=2)
    options = parser.parse_args()
    logs = tempfile.mkdtemp()
    sims = [start_sim(options.latency, f"{logs}/sim-{index}.log") for index in range(2)]
    try:
        urls = [url for _, url in sims]
        one, _ = timed_sweep(urls[:1], options.seeds, options.concurrency, "64x64")
        two, _ = timed_sweep(urls, options.seeds, options.concurrency, "64x64")
        ideal = options.seeds / options.concurrency * options.latency
        print(f"{options.seeds} seeds, --latency {options.latency} s, concurrency {options.concurrency} per server:")
        print(f"  one server:   {one:.2f} s (ideal {ideal:.2f} s)")
        print(f"  two replicas: {two:.2f} s (ideal {ideal / 2:.2f} s), speed-up x{one / two:.2f}")
        _, grid = timed_sweep(urls[:1], 16, 4, "1024x1024")
        data, metadata = grid._repr_mimebundle_()  # type: ignore[attr-defined]
        weight = sum(len(value) for value in data.values()) + len(json.dumps(metadata))
        full = sum(len(image.data) * 4 // 3 for image in grid.images)  # type: ignore[attr-defined]
        print(f"16-image 1024x1024 grid output: {weight / 1e6:.2f} MB in the notebook; the full PNGs as base64: "
              f"{full / 1e6:.1f} MB")
    finally:
        for process, _ in sims:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
