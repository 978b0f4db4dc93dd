"""Load: 200 image requests at once from one AsyncOmniClient against one vomni-sim. None is lost, every result
is the image its own seed makes (no answer handed to the wrong request), every one is recorded once, and the
client's memory stays bounded (the results are small; a client that buffered or leaked per request would not).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

from vomni_nb import AsyncOmniClient, HistoryStore, ImageResult, OmniClient
from tests.support.sims import IMAGE_MODEL, SimHandle

REQUESTS = 200
MiB = 1 << 20


class PeakRSS:
    """The most this process's RSS rose above where it was when the block began (sampled every 5 ms)."""

    def __enter__(self) -> PeakRSS:
        self._process = psutil.Process()
        self.baseline = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / MiB


def test_200_concurrent_async_images_none_lost_each_its_own(start_sim: Callable[..., SimHandle], tmp_path: Path) -> None:
    sim = start_sim(IMAGE_MODEL)
    store = HistoryStore(tmp_path / "history.sqlite3")

    async def main() -> tuple[list[ImageResult], float]:
        async with AsyncOmniClient(sim.url, history=store) as client:
            await client.image("warm up", size="64x64", seed=0)  # imports and the first connection, outside the bound
            with PeakRSS() as memory:
                results = await asyncio.gather(*(client.image(f"tile {seed}", size="64x64", seed=seed)
                                                 for seed in range(1, REQUESTS + 1)))
            return list(results), memory.growth_mib

    results, growth = asyncio.run(main())
    print(f"client RSS grew {growth:.1f} MiB at most during {REQUESTS} concurrent requests")
    assert len(results) == REQUESTS
    assert [(r.seed, r.prompt) for r in results] == [(s, f"tile {s}") for s in range(1, REQUESTS + 1)]
    digests = [hashlib.sha256(r.data).hexdigest() for r in results]
    assert len(set(digests)) == REQUESTS  # every image differs: no answer was given twice
    with OmniClient(sim.url, history=False) as client:  # and each is the one its seed and prompt make
        for seed in (1, 77, REQUESTS):
            assert client.image(f"tile {seed}", size="64x64", seed=seed).data == results[seed - 1].data
    entries = store.search(limit=None)
    assert sorted((e.seed, e.status) for e in entries if e.prompt.startswith("tile ")) == [
        (seed, "ok") for seed in range(1, REQUESTS + 1)]
    store.close()
    # 200 results of 64x64 are a few MB; 64 MiB would mean the client holds far more than its results.
    assert growth < 64, f"client RSS grew {growth:.0f} MiB for {REQUESTS} small images"
