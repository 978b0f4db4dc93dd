"""Ctrl-C (sync) and task cancellation (async) close the connection at once; the server aborts."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.errors import Interrupted
from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, SimHandle, launch_sim

ABORTED = "[AsyncOmni] Request"
PROMPT_BOUND_S = 0.5  # the bound from Ctrl-C to a closed connection


def _interrupt_main_after(delay: float, when: list[float]) -> threading.Timer:
    """A real SIGINT to the main thread (interrupt_main would not wake a blocking socket read)."""
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        when.append(time.perf_counter())
        signal.pthread_kill(main, signal.SIGINT)

    timer = threading.Timer(delay, fire)
    timer.start()
    return timer


def _open_connections(client: Any) -> int:
    pool = client._http._transport._pool
    return sum(1 for connection in pool.connections if not connection.is_closed())


def _interrupted(call: Callable[[], Any], delay: float = 0.4) -> float:
    fired: list[float] = []
    timer = _interrupt_main_after(delay, fired)
    try:
        # Issue 7 item 16: a KeyboardInterrupt still, saying in one line what became of the request.
        with pytest.raises(Interrupted, match="^interrupted; the server aborted the"):
            call()
        caught = time.perf_counter()
    finally:
        timer.cancel()
    assert fired, "the interrupt did not fire"
    return caught - fired[0]


@pytest.fixture(scope="module")
def slow_image_sim(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every image request takes 1.5 s: long enough to interrupt, short enough to finish an abort."""
    handle = launch_sim(IMAGE_MODEL, "--latency", "1.5", log_dir=tmp_path_factory.mktemp("slow-image"))
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def slow_chat_sim(tmp_path_factory: pytest.TempPathFactory) -> Any:
    handle = launch_sim(OMNI_MODEL, "--tokens-per-second", "10", log_dir=tmp_path_factory.mktemp("slow-chat"))
    yield handle
    handle.stop()


def _wait_for_aborts(sim: SimHandle, before: int, expected: int) -> int:
    """Wait until the log holds ``expected`` more abort lines than ``before``; return how many it holds."""
    deadline = time.monotonic() + 5
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
    with OmniClient(slow_image_sim.url) as client:
        client.models()  # warm: the interrupt must land in the generation request itself
        elapsed = _interrupted(lambda: client.image("a fox", size="64x64"))
        assert elapsed < PROMPT_BOUND_S
        assert _open_connections(client) == 0
    assert _wait_for_aborts(slow_image_sim, before, 1) == 1
    assert ABORTED in slow_image_sim.log()


def test_ctrl_c_during_streaming_chat(slow_chat_sim: SimHandle) -> None:
    sim = slow_chat_sim
    before = sim.log().count("aborted.")
    received: list[str] = []
    with OmniClient(sim.url) as client:
        client.models()

        def consume() -> None:
            for event in client.chat_stream("Tell me a long story", modalities=["text"]):
                received.append(type(event).__name__)

        elapsed = _interrupted(consume)
        assert elapsed < PROMPT_BOUND_S
        assert received, "the interrupt should arrive mid-stream"
        assert _open_connections(client) == 0
    assert _wait_for_aborts(sim, before, 1) == 1


def test_cancelled_task_aborts_request_and_stream(slow_image_sim: SimHandle, slow_chat_sim: SimHandle) -> None:
    image_sim, chat_sim = slow_image_sim, slow_chat_sim
    image_before, chat_before = image_sim.log().count("aborted."), chat_sim.log().count("aborted.")

    async def main() -> None:
        async with AsyncOmniClient(image_sim.url) as client:
            task = asyncio.create_task(client.image("a fox", size="64x64"))
            await asyncio.sleep(0.5)
            started = time.perf_counter()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.perf_counter() - started < PROMPT_BOUND_S
        async with AsyncOmniClient(chat_sim.url) as client:
            events: list[Any] = []

            async def consume() -> None:
                async for event in await client.chat_stream("Tell me a long story", modalities=["text"]):
                    events.append(event)

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.8)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert events

    asyncio.run(main())
    assert _wait_for_aborts(image_sim, image_before, 1) == 1
    assert _wait_for_aborts(chat_sim, chat_before, 1) == 1


def test_ctrl_c_during_a_sweep_drops_every_request(slow_image_sim: SimHandle) -> None:
    before = slow_image_sim.log().count("aborted.")
    with OmniClient(slow_image_sim.url) as client:
        # Late in the 1.5 s latency, so all three requests are surely in flight on a busy machine.
        elapsed = _interrupted(lambda: client.images("a fox", seeds=[1, 2, 3], size="64x64", concurrency=3), 1.0)
        assert elapsed < PROMPT_BOUND_S
    assert _wait_for_aborts(slow_image_sim, before, 3) == 3
