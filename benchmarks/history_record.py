"""What recording costs: HistoryStore.record() with a 1024x1024 PNG, alone and with a second writer.

Per-record times for: one process recording; two processes recording at once into the same database
(each process's own latency); and search() over the result with FTS5 and LIKE.
Every record fsyncs its file, its folder and the SQLite commit, so the disk sets the floor.

    .venv/bin/python benchmarks/history_record.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness as harness
from _harness import Row

CHILD = """
import io, json, os, sys, time
from PIL import Image
from vomni_nb._history import HistoryStore
db, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
store = HistoryStore(db)
buffer = io.BytesIO(); Image.effect_noise((1024, 1024), 40).convert("RGB").save(buffer, "PNG"); base = buffer.getvalue()
times = []
for i in range(count):
    record = {"schema": "vomni_nb/1", "kind": "image", "model": "Tongyi-MAI/Z-Image-Turbo", "prompt": f"{tag} {i} a fox",
              "params": {"size": "1024x1024", "num_inference_steps": 8}, "seed": i, "timings": {}}
    # The embedded recipe (it holds the prompt) makes every stored file distinct, as in real use.
    start = time.perf_counter(); store.record(record, files=[base]); times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def run_children(db: Path, count: int, tags: list[str]) -> list[list[float]]:
    import json

    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(count), tag], stdout=subprocess.PIPE, text=True)
        for tag in tags
    ]
    return [json.loads(proc.communicate()[0]) for proc in procs]


def run(quick: bool = False) -> list[Row]:
    from vomni_nb._history import HistoryStore

    records = 10 if quick else 40
    rows: list[Row] = []
    benchmark = "history: record() with a 1024x1024 PNG"
    with tempfile.TemporaryDirectory() as tmp:
        (one,) = run_children(Path(tmp) / "alone.sqlite3", records, ["solo"])
        rows.append(harness.summary(benchmark, "one process", one, "ms", scale=1000, baseline=True))
        shared = Path(tmp) / "shared.sqlite3"
        HistoryStore(shared).close()
        first, second = run_children(shared, records, ["left", "right"])
        rows.append(harness.summary(benchmark, "two processes at once", first + second, "ms", scale=1000,
                                    note="each fsyncs its file, folder and commit"))
        for fts in (True, False):
            with HistoryStore(shared, fts=fts) as store:
                times = []
                for _ in range(50):
                    start = time.perf_counter()
                    found = store.search("fox", limit=20)
                    times.append(time.perf_counter() - start)
                assert len(found) == 20
            rows.append(harness.summary(f"history: search('fox') over {2 * records} rows", "FTS5" if fts else "LIKE",
                                        times, "ms", scale=1000, baseline=not fts))
    return rows


if __name__ == "__main__":
    harness.main(run)
