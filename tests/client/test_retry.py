"""Retries only where safe: maths, Retry-After, and the client's behaviour on faults a real vomni-sim injects."""

from __future__ import annotations

import asyncio
import email.utils
import random
import signal
import threading
import time

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vomni_nb.async_client import AsyncOmniClient
from vomni_nb.client import OmniClient
from vomni_nb.errors import (
    APIConnectionError,
    BadRequestError,
    InsufficientStorageError,
    OverloadedError,
    RateLimitError,
    ServerError,
    StreamError,
    WrongServerError,
)
from vomni_nb.protocol.retry import RetryPolicy, backoff_delay, parse_retry_after, retry_delay

from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, TTS_MODEL, SimHandle, free_port, launch_sim



POLICY = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=8.0, max_retry_after=30.0)


@given(st.integers(0, 100), st.integers(0, 2**32))
def test_backoff_is_full_jitter_and_capped(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, POLICY, random.Random(seed))
    assert 0.0 <= delay <= min(8.0, 0.5 * 2**attempt)


def test_backoff_spreads_out() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(3, POLICY, rng) for _ in range(200)]
    assert max(delays) > 3.0 and min(delays) < 1.0  # jitter covers the range, not a fixed wait


def test_retry_after_parsing() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    for bad in (None, "", "soon", "nan"):
        assert parse_retry_after(bad) is None
    now = time.time()
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(20, abs=1.0)
    assert parse_retry_after(email.utils.formatdate(now - 100, usegmt=True), now=now) == 0.0
    assert retry_delay(0, 120.0, POLICY) == 30.0  # capped
    assert retry_delay(0, 2.0, POLICY) == 2.0
    # "-0000" is RFC 5322's "zone unknown": no moment to wait for, so no Retry-After (backoff instead).
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000") is None
    assert 0.0 <= retry_delay(3, None, POLICY, random.Random(1)) <= min(POLICY.max_delay, POLICY.base_delay * 8)


# Every fault below is served by a real vomni-sim (issue 16 item 8); the client's sleep is a recorder,
# so Retry-After values are checked exactly and nothing waits. --fault-seed makes the fault sequence
# repeatable: seed 7 rolls 0.32, 0.15, 0.65 (two faults at rate 0.5, then an answer), seed 1 rolls
# 0.13, 0.85 (one fault, then an answer).
TWO_FAULTS_THEN_OK = ("--fault-seed", "7")
ONE_FAULT_THEN_OK = ("--fault-seed", "1")
GENERATIONS = "POST /v1/images/generations"


def test_retry_after_is_honoured_then_success(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(IMAGE_MODEL, "--rate-503", "0.5", "--retry-after", "2", *TWO_FAULTS_THEN_OK)
    waits: list[float] = []
    with OmniClient(sim.url, sleep=waits.append) as client:
        result = client.image("fox", size="64x64")
    assert result.width == 64 and waits == [2.0, 2.0]
    log = sim.log()
    assert log.count(GENERATIONS) == 3 and log.count(f'{GENERATIONS} HTTP/1.1" 503') == 2


def test_retry_after_is_capped_and_attempts_bounded(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(IMAGE_MODEL, "--rate-503", "1", "--retry-after", "3600")
    waits: list[float] = []
    with OmniClient(sim.url, sleep=waits.append, retry_policy=RetryPolicy(max_retries=2, max_retry_after=4.0)) as client:
        with pytest.raises(OverloadedError, match="retry later") as caught:
            client.image("fox", size="64x64")
    assert waits == [4.0, 4.0] and caught.value.retry_after == 3600
    assert sim.log().count(GENERATIONS) == 3
    # A copy made with_options(max_retries=...) keeps the policy's cap and changes only the count.
    with OmniClient(sim.url, sleep=waits.append, retry_policy=RetryPolicy(max_retries=2, max_retry_after=4.0)) as client:
        with pytest.raises(OverloadedError):
            client.with_options(max_retries=1).image("fox", size="64x64")
    assert waits == [4.0, 4.0, 4.0] and sim.log().count(GENERATIONS) == 5


def test_429_is_retried_after_its_retry_after(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(IMAGE_MODEL, "--rate-429", "0.5", "--retry-after", "1.5", *TWO_FAULTS_THEN_OK)
    waits: list[float] = []
    with OmniClient(sim.url, sleep=waits.append) as client:
        assert client.image("fox", size="64x64").width == 64
    assert waits == [1.5, 1.5] and sim.log().count(f'{GENERATIONS} HTTP/1.1" 429') == 2


def test_429_exhausted_raises_rate_limit(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(IMAGE_MODEL, "--rate-429", "1", "--retry-after", "0.5")
    waits: list[float] = []
    with OmniClient(sim.url, sleep=waits.append) as client, pytest.raises(RateLimitError, match="429"):
        client.image("fox", size="64x64")
    assert waits == [0.5, 0.5] and sim.log().count(GENERATIONS) == 3


def test_400_is_never_retried(image_server) -> None:  # type: ignore[no-untyped-def]
    before = image_server.log().count(f'{GENERATIONS} HTTP/1.1" 400')
    waits: list[float] = []
    with OmniClient(image_server.url, sleep=waits.append) as client, pytest.raises(BadRequestError):
        client.image("fox", size="64x64", extra={"num_inference_steps": "many"})  # the server's validation refuses it
    assert waits == []
    assert image_server.log().count(f'{GENERATIONS} HTTP/1.1" 400') - before == 1


def test_an_image_request_to_a_model_without_diffusion_is_not_retried(tts_server, start_sim) -> None:  # type: ignore[no-untyped-def]
    # A model the client knows is refused before sending (issue 7 item 8): nothing retried, nothing sent.
    waits: list[float] = []
    with OmniClient(tts_server.url, sleep=waits.append) as client, pytest.raises(WrongServerError) as caught:
        client.image("fox", size="64x64")
    assert waits == [] and "%omni_server list" in str(caught.value) and "retry later" not in str(caught.value)
    # Under a name the client does not know, the server's 503 "No diffusion stage" says it: still not an
    # OverloadedError to retry later, but a WrongServerError made from it.
    renamed = start_sim(TTS_MODEL, "--served-model-name", "my-voice")
    with OmniClient(renamed.url, sleep=waits.append) as client, pytest.raises(WrongServerError) as caught:
        client.image("fox", size="64x64")
    assert waits == [] and isinstance(caught.value.__cause__, OverloadedError)
    assert "No diffusion stage" in str(caught.value) and "retry later" not in str(caught.value)
    assert renamed.log().count("POST /v1/images/generations") == 1


def test_connection_refused_is_retried_until_the_server_is_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    started: list[SimHandle] = []

    def start_during_the_wait(seconds: float) -> None:
        assert 0.0 <= seconds <= 0.5  # the first backoff: full jitter under base_delay
        if not started:
            started.append(launch_sim(IMAGE_MODEL, log_dir=tmp_path, port=port))

    try:
        with OmniClient(f"http://127.0.0.1:{port}", sleep=start_during_the_wait) as client:
            assert client.image("fox", size="64x64").width == 64
        assert len(started) == 1 and started[0].log().count(GENERATIONS) == 1
    finally:
        for sim in started:
            sim.stop()


def _wait_until_in_flight(sim: SimHandle) -> None:
    """Until the server holds a request (its /load counts it): then the request has surely been sent."""
    deadline = time.monotonic() + 30
    while httpx.get(sim.url + "/load", timeout=5).json()["server_load"] < 1:
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.02)


def test_a_broken_read_after_the_request_went_out_is_not_retried(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(IMAGE_MODEL, "--latency", "30")
    waits: list[float] = []

    def kill_once_in_flight() -> None:
        _wait_until_in_flight(sim)
        sim.process.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_once_in_flight)
    killer.start()
    try:
        with OmniClient(sim.url, model=IMAGE_MODEL, sleep=waits.append) as client:
            with pytest.raises(APIConnectionError, match="failed mid-request"):
                client.image("fox", size="64x64")
    finally:
        killer.join()
    assert waits == []  # the server may have started the work: resending could run it twice


def test_async_client_retries_the_same_way(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(IMAGE_MODEL, "--rate-503", "0.5", "--retry-after", "1", *ONE_FAULT_THEN_OK)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        async with AsyncOmniClient(sim.url, sleep=record) as client:
            assert (await client.image("fox", size="64x64")).width == 64

    asyncio.run(main())
    assert waits == [1.0] and sim.log().count(GENERATIONS) == 2


def test_recovers_from_a_real_503_fault_rate(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(IMAGE_MODEL, "--rate-503", "0.5", "--retry-after", "0.01")
    with OmniClient(sim.url, retry_policy=RetryPolicy(max_retries=12)) as client:
        results = [client.image("fox", size="64x64", steps=1) for _ in range(4)]
    assert all(r.width == 64 for r in results)
    assert " 503 " in sim.log()  # faults were injected and the client got through them


def test_real_midstream_error_is_a_stream_error(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(OMNI_MODEL, "--midstream-error-after", "3", "--tokens-per-second", "2000")
    with OmniClient(sim.url) as client:
        stream = client.chat_stream("tell me a story", modalities=["text"])
        with pytest.raises(StreamError) as caught:
            for _ in stream:
                pass
    assert isinstance(caught.value.partial, str) and caught.value.partial == stream.text
    assert caught.value.partial  # some text arrived before the error
    assert sim.log().count("POST /v1/chat/completions") == 1  # never retried


def test_500_and_507_are_sent_exactly_once_by_both_clients(start_sim) -> None:  # type: ignore[no-untyped-def]
    # Issue 16 item 1: a failed generation (500) or a full GPU (507) is never resent, whatever the client.
    tts = start_sim(TTS_MODEL)  # an input containing [[fail]] fails with 500
    full = start_sim(IMAGE_MODEL, "--rate-507", "1")
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    with OmniClient(tts.url, sleep=waits.append) as client, pytest.raises(ServerError) as failed:
        client.speak("hello [[fail]]")
    assert failed.value.status_code == 500
    with OmniClient(full.url, sleep=waits.append) as client, pytest.raises(InsufficientStorageError):
        client.image("fox", size="64x64")

    async def main() -> None:
        async with AsyncOmniClient(tts.url, sleep=record) as client:
            with pytest.raises(ServerError):
                await client.speak("hello [[fail]]")
        async with AsyncOmniClient(full.url, sleep=record) as client:
            with pytest.raises(InsufficientStorageError):
                await client.image("fox", size="64x64")

    asyncio.run(main())
    assert waits == []
    assert tts.log().count("POST /v1/audio/speech") == 2  # one per client
    assert full.log().count("POST /v1/images/generations") == 2
