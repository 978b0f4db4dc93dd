"""Sweeps: 8 seeds at 1 s of simulated GPU time per image, with ``vomni_nb.sweep`` at concurrency 1, 4 and 8
against a plain sequential loop of ``client.image`` calls (the baseline); then 16 seeds over one server
against two replicas of the same model (``concurrency`` 4 per server). ``--latency 1`` stands for GPU time,
so the numbers measure the scheduling, not this machine's CPU. Targets: concurrency 4 at least 3x faster
than the loop, two replicas at least 1.8x faster than one.

    .venv/bin/python benchmarks/sweep_replicas.py [--quick]
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator

import _harness as harness
from _harness import IMAGE_MODEL, Row

LATENCY = 1.0
PROMPT = "a lighthouse at dusk"
SIZE = "64x64"


@contextlib.contextmanager
def _servers(urls: list[str]) -> Iterator[None]:
    """A manager of this run's own, as the default, with ``urls`` attached (nothing of the user's)."""
    from vomni_nb.server import ServerManager, set_default_manager

    with tempfile.TemporaryDirectory() as registry:
        manager = ServerManager(registry_dir=registry, register_atexit=False)
        with set_default_manager(manager):
            for url in urls:
                manager.attach(url)
            yield
        manager.shutdown()


def _sweep(seeds: list[int], concurrency: int) -> float:
    import vomni_nb

    started = time.perf_counter()
    grid = vomni_nb.sweep(PROMPT, x=("seed", seeds), size=SIZE, concurrency=concurrency, status=False, log=False)
    took = time.perf_counter() - started
    assert [cell.seed for cell in grid.images] == seeds, "every cell holds its own seed"  # type: ignore[attr-defined]
    return took


def _loop(url: str, seeds: list[int]) -> float:
    from vomni_nb import OmniClient

    with OmniClient(url, history=False) as client:
        started = time.perf_counter()
        for seed in seeds:
            client.image(PROMPT, size=SIZE, seed=seed)
        return time.perf_counter() - started


def run(quick: bool = False) -> list[Row]:
    rounds = 1 if quick else 2
    eight = list(range(1, 9))
    sixteen = list(range(1, 17))
    samples: dict[str, list[float]] = {"sequential loop of client.image": [], "concurrency 1": [],
                                       "concurrency 4": [], "concurrency 8": []}
    replicas: dict[str, list[float]] = {"one server": [], "two replicas": []}
    with harness.sim(IMAGE_MODEL, "--latency", str(LATENCY)) as first, \
            harness.sim(IMAGE_MODEL, "--latency", str(LATENCY)) as second:
        for _ in range(rounds):
            samples["sequential loop of client.image"].append(_loop(first, eight))
            with _servers([first]):
                for concurrency in (1, 4, 8):
                    samples[f"concurrency {concurrency}"].append(_sweep(eight, concurrency))
                replicas["one server"].append(_sweep(sixteen, 4))
            with _servers([first, second]):
                replicas["two replicas"].append(_sweep(sixteen, 4))
    return (_rows(f"sweep of 8 seeds, {LATENCY:g} s per image", samples, "sequential loop of client.image")
            + _rows(f"sweep of 16 seeds, {LATENCY:g} s per image, 4 per server", replicas, "one server"))


def _rows(benchmark: str, samples: dict[str, list[float]], baseline: str) -> list[Row]:
    base = statistics.median(samples[baseline])
    return [harness.summary(benchmark, name, values, "s", baseline=name == baseline,
                            note="" if name == baseline else f"{base / statistics.median(values):.1f}x as fast")
            for name, values in samples.items()]


if __name__ == "__main__":
    harness.main(run)
