"""What every benchmark shares: its rows, the statistics, simulators on free ports, fresh interpreters.

A benchmark module exposes ``run(quick: bool = False) -> list[Row]``; ``benchmarks/run.py`` gathers them
into one table and one JSON file, and each module run alone prints its own rows the same way
(``harness.main(run)``). In each benchmark one row is the baseline; the runner fills in every row's ratio
to it (median ÷ baseline median: below 1 is faster for times, above 1 is more for rates).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # benchmarks import the stand-in paths and models the tests use
    sys.path.insert(0, str(REPO))

IMAGE_MODEL = "Tongyi-MAI/Z-Image-Turbo"
OMNI_MODEL = "Qwen/Qwen3-Omni-30B-A3B-Instruct"
TTS_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"


@dataclasses.dataclass
class Row:
    """One line of the table: a variant of a benchmark, its median and spread in ``unit``."""

    benchmark: str
    variant: str
    median: float | None  # None: no number (see note)
    unit: str
    spread: tuple[float, float] | None = None  # (low, high): the interquartile range, or min-max below 4 samples
    n: int = 0
    baseline: bool = False
    ratio: float | None = None  # filled in by ratios()
    note: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summary(benchmark: str, variant: str, samples: Sequence[float], unit: str, *, scale: float = 1.0,
            baseline: bool = False, note: str = "", **extra: Any) -> Row:
    """A row from raw samples (seconds, bytes, ...), shown times ``scale`` in ``unit``."""
    values = sorted(v * scale for v in samples)
    if len(values) >= 4:
        quartiles = statistics.quantiles(values, n=4, method="inclusive")
        spread: tuple[float, float] | None = (quartiles[0], quartiles[2])
    else:
        spread = (values[0], values[-1]) if len(values) > 1 else None
    return Row(benchmark, variant, statistics.median(values), unit, spread, len(values), baseline, note=note,
               extra={"min": values[0], "max": values[-1], **extra})


def ratios(rows: list[Row]) -> None:
    """Each row's median over its benchmark's baseline median (rows without a number get none)."""
    bases = {row.benchmark: row.median for row in rows if row.baseline and row.median}
    for row in rows:
        base = bases.get(row.benchmark)
        if base and row.median is not None:
            row.ratio = row.median / base


def interleaved(ways: dict[str, Callable[[], object]], rounds: int, warmup: int = 2,
                cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each way, in rounds that rotate who goes first (so drift hits all alike); with
    ``cpu``, this process's CPU seconds per call go there (the client's own cost, whatever the server's)."""
    for _ in range(warmup):
        for fn in ways.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in ways}
    names = list(ways)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            used = time.process_time()
            started = time.perf_counter()
            ways[name]()
            samples[name].append(time.perf_counter() - started)
            if cpu is not None:
                cpu.setdefault(name, []).append(time.process_time() - used)
    return samples


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 90.0,
                 poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"{url}: not healthy after {timeout:g} s")


@contextlib.contextmanager
def sim(model: str, *args: str) -> Iterator[str]:
    """A vomni-sim on a free port for the ``with`` block; yields its URL. Its log is kept on failure."""
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="vomni-bench-"))
    log = folder / "sim.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VOMNI_SIM_STORAGE": str(folder / "storage"),
           "VOMNI_SIM_VOICES_DIR": str(folder / "voices")}
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "vomni_nb.sim", model, "--host", "127.0.0.1", "--port",
                                    str(port), *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(url, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; log: {log}") from exc
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def fresh_python(python: str | Path, code: str, *, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """Run ``code`` in a new interpreter; it prints one JSON value last, which is returned.

    Bytecode is written and read as in an installed package (pip compiles it at install; an editable
    checkout compiles it on first import), whatever PYTHONDONTWRITEBYTECODE says here."""
    environment = {**os.environ, **(env or {})}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=environment, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise RuntimeError(f"{python} -c ... failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    digits = 3 if abs(value) < 10 else (1 if abs(value) < 1000 else 0)
    return f"{value:,.{digits}f}"


def table(rows: list[Row]) -> str:
    """The rows as one plain-text table (also valid Markdown)."""
    header = ["benchmark", "variant", "median", "spread", "ratio", "note"]
    lines = []
    for row in rows:
        median = "-" if row.median is None else f"{format_number(row.median)} {row.unit}"
        spread = "" if row.spread is None else f"{format_number(row.spread[0])}-{format_number(row.spread[1])}"
        ratio = "baseline" if row.baseline else ("" if row.ratio is None else
                                                 f"{row.ratio:.{3 if row.ratio < 0.1 else 2}f}x")
        lines.append([row.benchmark, row.variant, median, spread, ratio, row.note])
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header) - 1)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " | note |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|------|"]
    for line in lines:
        out.append("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + f" | {line[-1]} |")
    return "\n".join(out)


def main(run: Callable[[bool], list[Row]]) -> None:
    """A benchmark module run alone: ``python benchmarks/NAME.py [--quick]`` prints its rows as a table."""
    parser = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vomni-bench-history-") as history:
        os.environ["VOMNI_HISTORY"] = str(Path(history) / "history.sqlite3")  # never the user's history
        rows = run(options.quick)
    ratios(rows)
    print(table(rows))
