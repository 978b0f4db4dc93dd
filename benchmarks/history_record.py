"""What recording costs: HistoryStore.record() with a 1024x1024 PNG, alone and with a second writer.

Prints per-record medians and p95 for: one process recording; two processes recording at once into
the same database (each process's own latency); and search() over the result with FTS5 and LIKE.
Every record fsyncs its file, its folder and the SQLite commit, so the disk sets the floor.

    .venv/bin/python benchmarks/history_record.py [--records 100]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vomni_nb._history import HistoryStore

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


def summary(label: str, times: list[float]) -> None:
    ordered = sorted(times)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    print(f"{label:<38} median {statistics.median(times) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms   n={len(times)}")


def run_children(db: Path, count: int, tags: list[str]) -> list[list[float]]:
    import json

    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(count), tag], stdout=subprocess.PIPE, text=True)
        for tag in tags
    ]
    return [json.loads(proc.communicate()[0]) for proc in procs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        alone = Path(tmp) / "alone.sqlite3"
        (one,) = run_children(alone, args.records, ["solo"])
        summary("record(), one process", one)
        shared = Path(tmp) / "shared.sqlite3"
        HistoryStore(shared).close()
        first, second = run_children(shared, args.records, ["left", "right"])
        summary("record(), two processes at once (A)", first)
        summary("record(), two processes at once (B)", second)
        for fts in (True, False):
            with HistoryStore(shared, fts=fts) as store:
                times = []
                for _ in range(50):
                    start = time.perf_counter()
                    found = store.search("fox", limit=20)
                    times.append(time.perf_counter() - start)
                assert len(found) == 20
            summary(f"search('fox') over {2 * args.records} rows, {'FTS5' if fts else 'LIKE'}", times)
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        print(f"disk used: {size / 1e6:.1f} MB for {3 * args.records} records ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
