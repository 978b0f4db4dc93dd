"""Time from Ctrl-C (a real SIGINT) or task cancellation to the closed connection, and how a 50 MB SSE
line scales: the latencies that tests/client/test_cancel.py and tests/protocol/test_codecs.py assert as
behaviour only (issue 16 item 10).

Starts two vomni-sim servers on free ports (an image server whose every request takes 30 s, a chat
server streaming 10 tokens/s), then, for N rounds:

- image:  Ctrl-C during ``client.image()``, once the server holds the request (its ``/load``);
- stream: Ctrl-C during a streamed chat answer, after its first event;
- task:   ``task.cancel()`` of ``await client.image()`` in an asyncio task;
- sweep:  Ctrl-C during a 3-image sweep, once all three are under way.

Each figure is the time from the interrupt to the moment the call has raised with no connection left
open (the issue's bound was 0.5 s). Then the SSE decoder's CPU time for one 5 MB and one 50 MB line fed in
64 KB pieces: linear parsing makes the ratio ~10 (quadratic: ~100).

    .venv/bin/python benchmarks/cancel_latency.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, launch_sim  # noqa: E402
from vomni_nb import AsyncOmniClient, OmniClient  # noqa: E402
from vomni_nb.protocol.sse import SSEDecoder  # noqa: E402


def in_flight(url: str) -> int:
    return int(httpx.get(url + "/load", timeout=5).json()["server_load"])


def interrupt_when(condition: Callable[[], bool], fired: list[float]) -> None:
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        while not condition():
            time.sleep(0.01)
        fired.append(time.perf_counter())
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=fire, daemon=True).start()


def ctrl_c(call: Callable[[], Any], condition: Callable[[], bool]) -> float:
    fired: list[float] = []
    interrupt_when(condition, fired)
    try:
        call()
    except KeyboardInterrupt:
        return time.perf_counter() - fired[0]
    raise RuntimeError("the call finished before the interrupt")


def stream_round(url: str) -> float:
    received: list[object] = []
    with OmniClient(url, model=OMNI_MODEL) as client:
        def consume() -> None:
            for event in client.chat_stream("Tell me a long story", modalities=["text"]):
                received.append(event)
        return ctrl_c(consume, lambda: bool(received))


def task_round(url: str) -> float:
    async def main() -> float:
        async with AsyncOmniClient(url, model=IMAGE_MODEL) as client:
            task = asyncio.create_task(client.image("a fox", size="64x64"))
            while not await asyncio.to_thread(in_flight, url):
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return time.perf_counter() - started
        raise RuntimeError("not cancelled")

    return asyncio.run(main())


def line_cpu(size: int) -> float:
    piece = b"a" * 65536
    decoder = SSEDecoder(max_line_bytes=64 << 20)
    started = time.process_time()
    decoder.feed(b"data: ")
    for _ in range(size // len(piece)):
        decoder.feed(piece)
    decoder.feed(b"\n\n")
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="cancel-bench-"))
    image = launch_sim(IMAGE_MODEL, "--latency", "30", log_dir=folder)
    chat = launch_sim(OMNI_MODEL, "--tokens-per-second", "10", log_dir=folder)
    figures: dict[str, list[float]] = {"image": [], "stream": [], "task": [], "sweep": []}
    try:
        for _ in range(args.rounds):
            with OmniClient(image.url, model=IMAGE_MODEL) as client:
                figures["image"].append(ctrl_c(lambda: client.image("a fox", size="64x64"),
                                               lambda: in_flight(image.url) == 1))
            figures["stream"].append(stream_round(chat.url))
            while in_flight(image.url):
                time.sleep(0.01)
            figures["task"].append(task_round(image.url))
            while in_flight(image.url):
                time.sleep(0.01)
            with OmniClient(image.url, model=IMAGE_MODEL) as client:
                figures["sweep"].append(ctrl_c(lambda: client.images("a fox", seeds=[1, 2, 3], size="64x64",
                                                                     concurrency=3),
                                               lambda: in_flight(image.url) == 3))
            while in_flight(image.url):
                time.sleep(0.01)
    finally:
        image.stop()
        chat.stop()
    for name, values in figures.items():
        print(f"{name:7s} interrupt -> closed: median {statistics.median(values) * 1000:6.1f} ms, "
              f"max {max(values) * 1000:6.1f} ms over {len(values)} rounds")
    small, big = min(line_cpu(5 << 20) for _ in range(3)), min(line_cpu(50 << 20) for _ in range(3))
    print(f"SSE line 5 MB: {small * 1000:.1f} ms CPU, 50 MB: {big * 1000:.1f} ms CPU (ratio {big / small:.1f})")


if __name__ == "__main__":
    main()
