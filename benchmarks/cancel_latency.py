"""Time from Ctrl-C (a real SIGINT) or task cancellation to the closed connection, and how a 50 MB SSE
line scales: the latencies that tests/client/test_cancel.py and tests/protocol/test_codecs.py assert as
behaviour only (issue 16 item 10).

Starts two vomni-sim servers on free ports (an image server whose every request takes 30 s, a chat
server streaming 10 tokens/s), then, for 3 rounds:

- image:  Ctrl-C during ``client.image()``, once the server holds the request (its ``/load``);
- stream: Ctrl-C during a streamed chat answer, after its first event;
- task:   ``task.cancel()`` of ``await client.image()`` in an asyncio task;
- sweep:  Ctrl-C during a 3-image sweep, once all three are under way.

Each figure is the time from the interrupt to the moment the call has raised with no connection left
open (the issue's bound was 0.5 s). Then the SSE decoder's CPU time for one 5 MB and one 50 MB line fed in
64 KB pieces: linear parsing makes the ratio ~10 (quadratic: ~100).

    .venv/bin/python benchmarks/cancel_latency.py [--quick]
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

import _harness as harness
from _harness import Row
from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, launch_sim
from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.protocol.sse import SSEDecoder


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
    with OmniClient(url, model=OMNI_MODEL, history=False) as client:
        def consume() -> None:
            for event in client.chat_stream("Tell me a long story", modalities=["text"]):
                received.append(event)
        return ctrl_c(consume, lambda: bool(received))


def task_round(url: str) -> float:
    async def main() -> float:
        async with AsyncOmniClient(url, model=IMAGE_MODEL, history=False) as client:
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


def run(quick: bool = False) -> list[Row]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="cancel-bench-"))
    image = launch_sim(IMAGE_MODEL, "--latency", "30", log_dir=folder)
    chat = launch_sim(OMNI_MODEL, "--tokens-per-second", "10", log_dir=folder)
    figures: dict[str, list[float]] = {"Ctrl-C in client.image()": [], "Ctrl-C in a streamed chat": [],
                                       "task.cancel() of await client.image()": [],
                                       "Ctrl-C in a 3-image sweep": []}
    image_key, stream_key, task_key, sweep_key = figures
    try:
        for _ in range(1 if quick else 3):
            with OmniClient(image.url, model=IMAGE_MODEL, history=False) as client:
                figures[image_key].append(ctrl_c(lambda: client.image("a fox", size="64x64"),
                                                 lambda: in_flight(image.url) == 1))
            figures[stream_key].append(stream_round(chat.url))
            while in_flight(image.url):
                time.sleep(0.01)
            figures[task_key].append(task_round(image.url))
            while in_flight(image.url):
                time.sleep(0.01)
            with OmniClient(image.url, model=IMAGE_MODEL, history=False) as client:
                figures[sweep_key].append(ctrl_c(lambda: client.images("a fox", seeds=[1, 2, 3], size="64x64",
                                                                       concurrency=3),
                                                 lambda: in_flight(image.url) == 3))
            while in_flight(image.url):
                time.sleep(0.01)
    finally:
        image.stop()
        chat.stop()
        signal.signal(signal.SIGINT, previous)
    rows = [harness.summary("interrupt -> call raised, connection closed", name, values, "ms", scale=1000,
                            note="bound asked: 500 ms" if name == image_key else "")
            for name, values in figures.items()]
    small = [line_cpu(5 << 20) for _ in range(3)]
    big = [line_cpu(50 << 20) for _ in range(3)]
    benchmark = "SSE decoder, one long line fed in 64 KB pieces (CPU)"
    return rows + [harness.summary(benchmark, "5 MB line", small, "ms", scale=1000, baseline=True),
                   harness.summary(benchmark, "50 MB line", big, "ms", scale=1000,
                                   note="linear: about 10x the 5 MB line")]


if __name__ == "__main__":
    harness.main(run)
