"""End to end under failure: a server killed mid-request and mid-stream, a server that accepts and never
answers, 503 storms and 507s. Each must end in the right error, soon (bounded by the client's timeout, never
a hang), with nothing partial kept as if complete (history entries, saved files), and the next call working.

The client's own handling of each fault is tested in tests/client (retries, deadlines, hostile bodies);
here the whole path is checked: client, recording, history store, files, and a fresh call afterwards.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from vomni_nb import AsyncOmniClient, HistoryStore, OmniClient
from vomni_nb.errors import (
    APIConnectionError,
    APITimeoutError,
    InsufficientStorageError,
    ServerError,
    ServerManagerError,
    StreamError,
)
from vomni_nb.grids import ImageGrid
from vomni_nb.server import ServerManager
from tests.support.silent import SilentServer
from tests.support.sims import IMAGE_MODEL, TTS_MODEL, SimHandle

LONG_TEXT = " ".join(["The lighthouse keeper climbed the stairs again at dusk."] * 10)


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(0.02)


def _in_flight(sim: SimHandle) -> int:
    try:
        return int(httpx.get(sim.url + "/load", timeout=5).json()["server_load"])
    except httpx.TransportError:
        return 0


def _kill_when(sim: SimHandle, condition: Callable[[], bool]) -> threading.Thread:
    def kill() -> None:
        _wait_until(condition, "the request under way")
        sim.process.send_signal(signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _entries(store: HistoryStore) -> list[tuple[str, str, int]]:
    return [(entry.kind, entry.status, len(entry.files)) for entry in store.search(limit=None)]


def test_a_server_killed_mid_request_fails_the_call_and_only_a_failure_is_recorded(
        start_sim: Callable[..., SimHandle], tmp_path: Path) -> None:
    sim = start_sim(IMAGE_MODEL, "--latency", "60")
    store = HistoryStore(tmp_path / "history.sqlite3")
    killer = _kill_when(sim, lambda: _in_flight(sim) == 1)
    with OmniClient(sim.url, history=store) as client:
        with pytest.raises(APIConnectionError, match="failed mid-request") as caught:
            client.image("a lighthouse", size="64x64", seed=3)
    killer.join(30)
    assert "%omni_server status" in str(caught.value)  # says what to do next
    assert _entries(store) == [("image", "error", 0)]  # a failure, with no file
    # The next call, to a server that is up, works and is recorded whole beside the failure.
    replacement = start_sim(IMAGE_MODEL)
    with OmniClient(replacement.url, history=store) as client:
        assert client.image("a lighthouse", size="64x64", seed=3).seed == 3
    assert sorted(_entries(store)) == [("image", "error", 0), ("image", "ok", 1)]
    store.close()


def test_a_server_killed_mid_stream_keeps_what_arrived_and_is_recorded_as_a_failure(
        start_sim: Callable[..., SimHandle], tmp_path: Path) -> None:
    sim = start_sim(TTS_MODEL, "--speech-realtime-factor", "1")  # about 30 s of speech, sent in real time
    store = HistoryStore(tmp_path / "history.sqlite3")
    received: list[bytes] = []
    with OmniClient(sim.url, history=store) as client:
        stream = client.speak_stream(LONG_TEXT, response_format="pcm")
        killer = _kill_when(sim, lambda: len(received) >= 2)
        with pytest.raises(StreamError, match="connection broke") as caught:
            for event in stream:
                if getattr(event, "pcm", None):
                    received.append(event.pcm)
        killer.join(30)
        with pytest.raises(StreamError):
            stream.finish()  # no result from a broken stream, and the same error says why
    assert caught.value.partial  # what arrived is kept for the caller...
    assert _entries(store) == [("speech", "error", 0)]  # ...and the history has a failure, not a speech file
    store.close()


def test_a_server_that_never_answers_ends_every_call_at_its_timeout(tmp_path: Path) -> None:
    with SilentServer() as silent:
        with OmniClient(silent.url, model="m", timeout=1.0, history=False) as client:
            calls: dict[str, Callable[[], object]] = {
                "image": lambda: client.image("a fox", size="64x64"),
                "chat stream": lambda: client.chat_stream("hi").finish(),
                "speech": lambda: client.speak("hi"),
                "models": client.models,
            }
            for name, call in calls.items():
                before = silent.accepted
                with pytest.raises(APITimeoutError, match="after 1 s") as caught:
                    call()
                assert "timeout=" in str(caught.value), name  # says which setting to raise
                assert silent.accepted == before + 1, f"{name}: a read timeout must not be resent"

        async def in_a_loop() -> None:
            async with AsyncOmniClient(silent.url, model=IMAGE_MODEL, timeout=1.0, history=False) as client:
                with pytest.raises(APITimeoutError):
                    await client.image("a fox", size="64x64")

        asyncio.run(in_a_loop())
        manager = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False)
        with pytest.raises(ServerManagerError, match="nothing answers"):
            manager.attach(silent.url)
        manager.shutdown()


def test_a_storm_of_503s_is_ridden_out_by_retries_and_each_image_keeps_its_seed(
        start_sim: Callable[..., SimHandle], tmp_path: Path) -> None:
    # Half of all generations answer 503 (Retry-After: 0): with enough retries every one gets through.
    sim = start_sim(IMAGE_MODEL, "--rate-503", "0.5", "--retry-after", "0", "--fault-seed", "5")
    store = HistoryStore(tmp_path / "history.sqlite3")
    seeds = list(range(1, 9))
    with OmniClient(sim.url, history=store, max_retries=12) as client:
        batch = client.images("a red fox in the snow", seeds=seeds, size="64x64", concurrency=4)
        reference = client.image("a red fox in the snow", size="64x64", seed=5)
    assert [image.seed for image in batch.images] == seeds
    assert batch.images[4].data == reference.data  # the retried cell holds the image its seed makes
    refused = sim.log().count(" 503 ")
    assert refused > 0, "the storm did not happen"
    # Retries are not generations of their own: one finished entry per image, no failures.
    assert sorted(_entries(store)) == [("image", "ok", 1)] * (len(seeds) + 1)
    store.close()


def _sweep_into(folder: Path, sim: SimHandle, seeds: list[int], **options: object) -> ImageGrid:
    import vomni_nb

    return vomni_nb.sweep("a red fox in the snow", x=("seed", seeds), size="64x64", server=sim.url, save=folder,
                          status=False, **options)


def _whole_pngs(folder: Path) -> list[int]:
    """The seed in each file's name; every file must be a whole, readable image (none cut short)."""
    seeds = []
    for path in sorted(folder.iterdir()):
        with Image.open(path) as image:
            image.verify()
        seeds.append(int(re.findall(r"\d+", path.stem)[-1]))
    return sorted(seeds)


def test_507s_in_a_sweep_fail_only_their_cells_and_leave_no_files(
        start_sim: Callable[..., SimHandle], tmp_path: Path) -> None:
    sim = start_sim(IMAGE_MODEL, "--rate-507", "0.5", "--fault-seed", "3")
    seeds = list(range(1, 9))
    grid = _sweep_into(tmp_path / "out", sim, seeds, concurrency=2)
    failed = list(grid.failures)
    finished = sorted(image.seed for image in grid.images)
    assert failed and finished, "the fault seed should fail some cells, not all"
    for cell in failed:  # each failure stands in its place, saying what to do
        assert isinstance(cell.error, InsufficientStorageError) and "smaller resolution" in str(cell.error)
    assert sim.log().count(" 507 ") == len(failed)  # out of memory is not retried: it would fail again
    assert _whole_pngs(tmp_path / "out") == finished  # a file for each finished cell, none for a failed one


def test_a_server_that_dies_mid_sweep_leaves_only_the_finished_images(
        start_sim: Callable[..., SimHandle], tmp_path: Path) -> None:
    sim = start_sim(IMAGE_MODEL, "--crash-after", "3", "--dead-engine-window", "0.5")
    grid = _sweep_into(tmp_path / "out", sim, list(range(1, 7)), concurrency=1)  # one at a time: 3 finish
    assert sorted(image.seed for image in grid.images) == [1, 2, 3]
    failed = list(grid.failures)
    assert [cell.seed for cell in failed] == [4, 5, 6]
    assert all(isinstance(cell.error, (ServerError, APIConnectionError)) for cell in failed), failed
    assert _whole_pngs(tmp_path / "out") == [1, 2, 3]


def test_a_timed_out_image_leaves_no_file_and_the_server_aborts_it(
        start_sim: Callable[..., SimHandle], tmp_path: Path) -> None:
    sim = start_sim(IMAGE_MODEL, "--latency", "30")
    store = HistoryStore(tmp_path / "history.sqlite3")
    with OmniClient(sim.url, history=store, timeout=httpx.Timeout(1.0, connect=10.0)) as client:
        with pytest.raises(APITimeoutError):
            client.image("a slow fox", size="64x64", seed=1)
    assert "aborted." in sim.wait_for_log("aborted.", timeout=30)  # the GPU is freed, not left generating
    assert _entries(store) == [("image", "error", 0)]
    store.close()
