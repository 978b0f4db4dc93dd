"""Ctrl-C (sync) and task cancellation (async) close the connection at once; the server aborts.

The behaviour is asserted (the client holds no open connection, the server logged the abort); how
fast that happens is a latency, measured in ``benchmarks/cancel_latency.py``. Interrupts fire once
the request is known to be under way (the server's ``/load`` counts it, or an event arrived), never
after a fixed sleep that assumes so.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.errors import Interrupted
from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, SimHandle, launch_sim

ABORTED = "[AsyncOmni] Request"


def in_flight(sim: SimHandle) -> int:
    """How many generations the server is working on now (vLLM's /load)."""
    return int(httpx.get(sim.url + "/load", timeout=5).json()["server_load"])


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(0.02)


def _interrupt_main_when(condition: Callable[[], bool], fired: threading.Event) -> threading.Thread:
    """A real SIGINT to the main thread once ``condition`` holds (interrupt_main would not wake a blocking read)."""
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        wait_until(condition, "the request under way")
        fired.set()
        signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


def _interrupted(call: Callable[[], Any], when: Callable[[], bool]) -> None:
    fired = threading.Event()
    thread = _interrupt_main_when(when, fired)
    # Issue 7 item 16: a KeyboardInterrupt still, saying in one line what became of the request.
    with pytest.raises(Interrupted, match="^interrupted; the server aborted the"):
        call()
    thread.join(30)
    assert fired.is_set(), "the interrupt did not fire"


def _open_connections(client: Any) -> int:
    pool = client._http._transport._pool
    return sum(1 for connection in pool.connections if not connection.is_closed())


@pytest.fixture(scope="module")
def slow_image_sim(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every image request takes 30 s: it is surely under way when interrupted, and never ends by itself."""
    handle = launch_sim(IMAGE_MODEL, "--latency", "30", log_dir=tmp_path_factory.mktemp("slow-image"))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def slow_chat_sim(tmp_path_factory: pytest.TempPathFactory) -> Any:
    handle = launch_sim(OMNI_MODEL, "--tokens-per-second", "10", log_dir=tmp_path_factory.mktemp("slow-chat"))
    yield handle
    handle.stop()


def _wait_for_aborts(sim: SimHandle, before: int, expected: int) -> int:
    """Wait until the log holds ``expected`` more abort lines than ``before``; return how many it holds."""
    deadline = time.monotonic() + 10
    while sim.log().count("aborted.") - before < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return sim.log().count("aborted.") - before


@pytest.fixture(autouse=True)
def _default_sigint() -> Any:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_image_request(slow_image_sim: SimHandle) -> None:
    before = slow_image_sim.log().count("aborted.")
    with OmniClient(slow_image_sim.url, model=IMAGE_MODEL) as client:
        _interrupted(lambda: client.image("a fox", size="64x64"), lambda: in_flight(slow_image_sim) == 1)
        assert _open_connections(client) == 0
    assert _wait_for_aborts(slow_image_sim, before, 1) == 1
    assert ABORTED in slow_image_sim.log()
    wait_until(lambda: in_flight(slow_image_sim) == 0, "the server dropping the work")


def test_ctrl_c_during_streaming_chat(slow_chat_sim: SimHandle) -> None:
    sim = slow_chat_sim
    before = sim.log().count("aborted.")
    received: list[str] = []
    with OmniClient(sim.url, model=OMNI_MODEL) as client:

        def consume() -> None:
            for event in client.chat_stream("Tell me a long story", modalities=["text"]):
                received.append(type(event).__name__)

        _interrupted(consume, lambda: bool(received))
        assert received, "the interrupt should arrive mid-stream"
        assert _open_connections(client) == 0
    assert _wait_for_aborts(sim, before, 1) == 1


def test_cancelled_task_aborts_request_and_stream(slow_image_sim: SimHandle, slow_chat_sim: SimHandle) -> None:
    image_sim, chat_sim = slow_image_sim, slow_chat_sim
    image_before, chat_before = image_sim.log().count("aborted."), chat_sim.log().count("aborted.")

    async def until(condition: Callable[[], bool]) -> None:
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.02)

    async def main() -> None:
        async with AsyncOmniClient(image_sim.url, model=IMAGE_MODEL) as client:
            task = asyncio.create_task(client.image("a fox", size="64x64"))
            await asyncio.wait_for(until(lambda: in_flight(image_sim) == 1), 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _open_connections(client) == 0
        async with AsyncOmniClient(chat_sim.url, model=OMNI_MODEL) as client:
            first = asyncio.Event()

            async def consume() -> None:
                async for _ in await client.chat_stream("Tell me a long story", modalities=["text"]):
                    first.set()

            task = asyncio.create_task(consume())
            await asyncio.wait_for(first.wait(), 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert _open_connections(client) == 0

    asyncio.run(main())
    assert _wait_for_aborts(image_sim, image_before, 1) == 1
    assert _wait_for_aborts(chat_sim, chat_before, 1) == 1
    wait_until(lambda: in_flight(image_sim) == 0, "the server dropping the work")


def test_ctrl_c_during_a_sweep_drops_every_request(slow_image_sim: SimHandle) -> None:
    before = slow_image_sim.log().count("aborted.")
    with OmniClient(slow_image_sim.url, model=IMAGE_MODEL) as client:
        _interrupted(lambda: client.images("a fox", seeds=[1, 2, 3], size="64x64", concurrency=3),
                     lambda: in_flight(slow_image_sim) == 3)
    assert _wait_for_aborts(slow_image_sim, before, 3) == 3
    wait_until(lambda: in_flight(slow_image_sim) == 0, "the server dropping the work")
