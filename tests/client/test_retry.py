"""Retries only where safe: maths, Retry-After, and the client's behaviour on injected faults."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
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

from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, TTS_MODEL



def _png_b64() -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 4), "red").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


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


IMAGE_BODY = json.dumps({"created": 1, "data": [{"b64_json": _png_b64(), "url": None, "revised_prompt": None}],
                         "output_format": "png", "size": "8x4", "cot_output": None, "metrics": {}}).encode()
MODELS_BODY = json.dumps({"object": "list", "data": [{"id": IMAGE_MODEL}]}).encode()


class Script:
    """A MockTransport handler answering generation requests from a script; /v1/models always works."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, content=MODELS_BODY)
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer


def _busy(retry_after: str | None = None, status: int = 503) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"message": "busy", "type": "Service Unavailable", "param": None, "code": status}}
    return httpx.Response(status, json=body, headers=headers)


def _client(script: Script, waits: list[float], **kwargs: object) -> OmniClient:
    return OmniClient("http://mock", transport=httpx.MockTransport(script), sleep=waits.append, **kwargs)  # type: ignore[arg-type]


def test_retry_after_is_honoured_then_success() -> None:
    script, waits = Script(_busy("2"), _busy("1.5"), httpx.Response(200, content=IMAGE_BODY)), []
    with _client(script, waits) as client:
        result = client.image("fox", size="8x4")
    assert result.width == 8 and script.calls == 3 and waits == [2.0, 1.5]


def test_retry_after_is_capped_and_attempts_bounded() -> None:
    script, waits = Script(_busy("3600"), _busy("3600"), _busy("3600")), []
    with _client(script, waits, retry_policy=RetryPolicy(max_retries=2, max_retry_after=4.0)) as client:
        with pytest.raises(OverloadedError, match="retry later") as caught:
            client.image("fox")
    assert waits == [4.0, 4.0] and script.calls == 3 and caught.value.retry_after == 3600


def test_429_backs_off_with_jitter_without_retry_after() -> None:
    script, waits = Script(_busy(status=429), httpx.Response(200, content=IMAGE_BODY)), []
    with _client(script, waits) as client:
        client.image("fox")
    assert len(waits) == 1 and 0.0 <= waits[0] <= 0.5


def test_429_exhausted_raises_rate_limit() -> None:
    script, waits = Script(*[_busy(status=429)] * 3), []
    with _client(script, waits) as client, pytest.raises(RateLimitError):
        client.image("fox")
    assert script.calls == 3


def test_400_is_never_retried() -> None:
    bad = httpx.Response(400, json={"error": {"message": "no", "type": "Bad Request", "param": None, "code": 400}})
    script, waits = Script(bad), []
    with _client(script, waits) as client, pytest.raises(BadRequestError):
        client.image("fox")
    assert script.calls == 1 and waits == []


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


def test_connection_refused_is_retried_but_a_broken_read_is_not() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    script, waits = Script(refused, httpx.Response(200, content=IMAGE_BODY)), []
    with _client(script, waits) as client:
        client.image("fox")
    assert script.calls == 2 and len(waits) == 1
    script, waits = Script(httpx.ReadError("connection reset"), httpx.Response(200, content=IMAGE_BODY)), []
    with _client(script, waits) as client, pytest.raises(APIConnectionError, match="mid-request"):
        client.image("fox")
    assert script.calls == 1 and waits == []


def test_midstream_error_is_not_retried_and_keeps_partial_text() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m", "modality": "text",
             "choices": [{"index": 0, "delta": {"content": "Hello "}, "finish_reason": None}]}
    body = (f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(chunk)}\n\n"
            'data: {"error": {"message": "engine died", "type": "InternalServerError", "param": null, "code": 500}}\n\n'
            "data: [DONE]\n\n").encode()
    script, waits = Script(httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})), []
    with _client(script, waits) as client:
        stream = client.chat_stream("hi")
        with pytest.raises(StreamError, match="engine died") as caught:
            stream.finish()
    assert caught.value.partial == "Hello Hello " and caught.value.code == 500
    assert script.calls == 1 and waits == []


def test_async_client_retries_the_same_way() -> None:
    script = Script(_busy("1"), httpx.Response(200, content=IMAGE_BODY))
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        async with AsyncOmniClient("http://mock", transport=httpx.MockTransport(script), sleep=record) as client:
            assert (await client.image("fox")).width == 8

    asyncio.run(main())
    assert waits == [1.0] and script.calls == 2


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
