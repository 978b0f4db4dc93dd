"""``make bench``: run every benchmark, print one table, write it as JSON to benchmarks/results/<date>-<host>.json.

Each module in :data:`MODULES` exposes ``run(quick) -> list[Row]``. A benchmark that fails leaves a row
saying so and the others still run (the exit status is then 1). Every result the benchmarks make is
recorded in a temporary history, never the user's.

    .venv/bin/python benchmarks/run.py [--quick] [--only import_cost,chat_stream] [--out PATH]
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

import _harness as harness
from _harness import Row

# Cheapest first, so a broken environment shows early.
MODULES = (
    "import_cost",
    "client_overhead",
    "chat_stream",
    "sweep_replicas",
    "ready_latency",
    "notebook_weight",
    "speech_first_audio",
    "studio_cancel",
    "history_record",
    "sim_core",
)
RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict[str, object]:
    return {
        "host": socket.gethostname(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds everywhere (a smoke run, not numbers)")
    parser.add_argument("--only", default="", help="comma-separated module names")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    options = parser.parse_args()
    chosen = [name for name in MODULES if not options.only or name in options.only.split(",")]
    unknown = set(filter(None, options.only.split(","))) - set(MODULES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(MODULES)}")
    machine = _machine()
    started = time.perf_counter()
    rows: list[Row] = []
    timings: dict[str, float] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="vomni-bench-history-") as history:
        os.environ["VOMNI_HISTORY"] = str(Path(history) / "history.sqlite3")
        for name in chosen:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                rows += importlib.import_module(name).run(options.quick)
            except Exception as exc:  # one broken benchmark must not hide the others' numbers
                failed = True
                traceback.print_exc()
                rows.append(Row(name, "(failed)", None, "", note=f"{type(exc).__name__}: {exc}"[:200]))
            timings[name] = round(time.perf_counter() - began, 1)
            print(f"[bench] {name}: {timings[name]:.0f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - started
    harness.ratios(rows)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    when = datetime.datetime.now()
    label = (f"{machine['cpus']} CPUs ({machine['host']}), Python {machine['python']}, {when:%Y-%m-%d %H:%M}, "
             f"{total:.0f} s in all{' (--quick: not real numbers)' if options.quick else ''}")
    print(f"\nvomni_nb benchmarks on {label}")
    print("median and spread (interquartile range, or min-max under 4 runs); ratio = median / the baseline's\n")
    print(harness.table(rows))
    out = options.out or RESULTS / f"{when:%Y-%m-%d}-{machine['host']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"when": when.isoformat(timespec="seconds"), "quick": options.quick,
                               "machine": machine, "seconds": round(total, 1), "per_benchmark_s": timings,
                               "rows": [row.to_json() for row in rows]}, indent=1) + "\n")
    print(f"\nwritten to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
