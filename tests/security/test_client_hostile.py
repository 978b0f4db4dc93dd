"""The client under hostile servers (issue 14, items 12-16): each attack from the issue, run against a
real server process on 127.0.0.1 (``tests/support/hostile.py``), ends in a clear error of ours, with
the client's RSS growth bounded (``tests/support/memory.py``; the figures go to the test log).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.errors import (
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ResponseFormatError,
    ServerError,
    ServerManagerError,
    StreamError,
    VomniError,
)
from vomni_nb.protocol.limits import Limits
from vomni_nb.server import ServerManager
from tests.support.hostile import HostileServer
from tests.support.memory import PeakRSS

log = logging.getLogger(__name__)
MiB = 1 << 20
KEY = "sk-hostile-echo-0123456789abcdef"


def _growth(peak: PeakRSS, attack: str) -> float:
    log.warning("client RSS growth under %s: %.1f MiB", attack, peak.growth_mib)
    return peak.growth_mib


# ---- item 12: a server sending one byte every 2 s, against timeout=5 --------------------------------

TRICKLE = ("--interval", "2")


@pytest.mark.slow
def test_a_trickling_server_cannot_hold_a_call_past_its_timeout(hostile: Callable[..., HostileServer]) -> None:
    headers = hostile("trickle", "--phase", "headers", *TRICKLE)
    body = hostile("trickle", "--phase", "body", *TRICKLE)
    with PeakRSS() as peak:
        with OmniClient(headers.url, timeout=5, model="m", max_retries=0) as client:
            with pytest.raises(APITimeoutError, match=r"No whole answer .* after 5 s \(the timeout covers the whole"):
                client.models()
        with OmniClient(body.url, timeout=5, model="m", max_retries=0) as client:
            with pytest.raises(APITimeoutError, match="after 5 s"):
                client.image("a fox")
            assert client._http._transport._pool.connections == []  # the trickling connection was dropped
    assert _growth(peak, "trickle (sync)") < 32


@pytest.mark.slow
def test_a_trickled_stream_ends_at_the_idle_gap_between_events(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("trickle", "--phase", "sse", *TRICKLE)
    with OmniClient(server.url, timeout=5, model="m") as client:
        stream = client.chat_stream("hi")  # the headers came whole: the stream is open
        with pytest.raises(APITimeoutError, match="sent no event after 5 s"):
            stream.finish()
        assert stream._response.is_closed


@pytest.mark.slow
def test_the_async_client_keeps_its_deadlines_too(hostile: Callable[..., HostileServer]) -> None:
    headers = hostile("trickle", "--phase", "headers", *TRICKLE)
    sse = hostile("trickle", "--phase", "sse", *TRICKLE)

    async def main() -> None:
        async with AsyncOmniClient(headers.url, timeout=5, model="m", max_retries=0) as client:
            with pytest.raises(APITimeoutError, match="No whole answer"):
                await client.models()
        async with AsyncOmniClient(sse.url, timeout=5, model="m") as client:
            stream = await client.chat_stream("hi")
            with pytest.raises(APITimeoutError, match="sent no event after 5 s"):
                await stream.finish()

    asyncio.run(main())


@pytest.mark.slow
def test_attach_gives_up_on_a_trickling_server(hostile: Callable[..., HostileServer], tmp_path: Path) -> None:
    server = hostile("trickle", "--phase", "headers", *TRICKLE)
    manager = ServerManager(registry_dir=tmp_path / "registry", log_dir=tmp_path / "logs", register_atexit=False)
    with pytest.raises(ServerManagerError, match=r"nothing answers at .*/health \(no whole answer within 5 s\)"):
        manager.attach(server.url)
    assert manager.servers == []


def test_a_stream_may_also_be_bounded_in_total(hostile: Callable[..., HostileServer]) -> None:
    # Events keep coming (so the idle gap never trips), but the stream may not last for ever.
    server = hostile("sse-endless", "--size", str(1 << 30))
    with OmniClient(server.url, model="m", limits=Limits(stream_timeout=0.5, max_stream_text=1 << 30,
                                                         max_stream_bytes=1 << 30)) as client:
        stream = client.chat_stream("hi")
        with pytest.raises(APITimeoutError, match=r"still going after 0.5 s \(Limits.stream_timeout\)"):
            stream.finish()
    assert stream.text  # what arrived stays readable


# ---- item 13: memory ---------------------------------------------------------------------------------


def test_a_huge_body_stops_at_the_limit(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("big", "--size", str(400 * MiB))  # the 400 MB body cost +903 MB
    with PeakRSS() as peak, OmniClient(server.url, model="m", limits=Limits(max_body_bytes=16 * MiB)) as client:
        with pytest.raises(ResponseFormatError, match=r"larger than 16 MiB: refused.*raise Limits.max_body_bytes"):
            client.image("a fox")
    assert _growth(peak, "400 MB body, 16 MiB limit") < 48


def test_a_gzip_bomb_stops_at_the_decoded_limit(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("gzip", "--size", str(1 << 30))  # ~1 MB on the wire, 1 GiB decoded
    with PeakRSS() as peak, OmniClient(server.url, model="m", limits=Limits(max_decoded_bytes=16 * MiB)) as client:
        with pytest.raises(ResponseFormatError, match=r"expands past 16 MiB.*compression bomb.*max_decoded_bytes"):
            client.image("a fox")
    assert _growth(peak, "1 GiB gzip bomb, 16 MiB limit") < 48


def test_an_endless_stream_stops_at_the_text_limit_and_finish_returns(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("sse-endless", "--size", str(1 << 30))
    with PeakRSS() as peak, OmniClient(server.url, model="m") as client:  # the default limits
        stream = client.chat_stream("hi")
        with pytest.raises(StreamError, match=r"more than 16,777,216 characters of text.*Limits.max_stream_text") as caught:
            stream.finish()
    assert len(caught.value.partial) <= 16 * MiB and caught.value.partial.startswith("lorem ipsum")
    assert _growth(peak, "endless SSE, default limits") < 160


def test_one_endless_line_stops_at_the_line_limit(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("sse-line", "--size", str(50 * MiB))
    with PeakRSS() as peak, OmniClient(server.url, model="m") as client:
        stream = client.chat_stream("hi")
        with pytest.raises(ResponseFormatError, match=r"line longer than 32 MiB.*Limits.max_line_bytes"):
            stream.finish()
    assert _growth(peak, "50 MB SSE line, default limits") < 96


# ---- item 14: foreign exceptions -------------------------------------------------------------------


def test_bombs_and_deep_json_raise_only_our_errors(hostile: Callable[..., HostileServer]) -> None:
    image = hostile("image-bomb")
    wav = hostile("wav-bomb")
    deep = hostile("deep-json", "--size", "100000")
    with OmniClient(image.url, model="m") as client, pytest.raises(ResponseFormatError, match="decompression bomb"):
        client.image("a fox")
    with OmniClient(wav.url, model="m") as client, pytest.raises(ResponseFormatError, match="Unsupported WAV format"):
        client.speak("hello")
    with OmniClient(deep.url, model="m") as client, pytest.raises(ResponseFormatError, match="nests deeper"):
        client.models()


# ---- item 15: redirects ----------------------------------------------------------------------------


def test_a_redirect_is_an_error_naming_its_target(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("redirect", "--location", f"http://elsewhere.invalid/steal?key={KEY}")
    with OmniClient(server.url, model="m", api_key=KEY) as client:
        with pytest.raises(APIStatusError, match=r"302 Found .* redirects to http://elsewhere.invalid/steal") as caught:
            client.image("a fox")
        assert caught.value.status_code == 302 and KEY not in str(caught.value)
        with pytest.raises(APIStatusError, match="302"):
            client.chat_stream("hi")  # a stream request too: the redirect is never read as a stream
        assert client._http._transport._pool.connections == []  # nothing left open

    async def main() -> None:
        async with AsyncOmniClient(server.url, model="m") as client:
            with pytest.raises(APIStatusError, match="redirects to"):
                await client.health()

    asyncio.run(main())


# ---- item 16: a server echoing the key -------------------------------------------------------------


def _no_key(error: BaseException) -> None:
    for value in (str(error), repr(error.args), getattr(error, "body", None), getattr(error, "param", None),
                  getattr(error, "partial", None), getattr(error, "message", None)):
        assert KEY not in json.dumps(value, default=str), (type(error).__name__, value)


def test_an_echoed_key_never_reaches_our_errors(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("echo")
    caught: list[VomniError] = []
    with OmniClient(server.url, model="m", api_key=KEY, max_retries=0) as client:
        for call, kind in ((lambda: client.image("a fox"), BadRequestError), (lambda: client.speak("hi"), ServerError),
                           (client.models, ResponseFormatError), (lambda: client.chat_stream("hi").finish(), StreamError)):
            with pytest.raises(kind) as raised:
                call()
            caught.append(raised.value)

    async def main() -> None:
        async with AsyncOmniClient(server.url, model="m", api_key=KEY, max_retries=0) as client:
            for call in (lambda: client.image("a fox"), lambda: client.speak("hi"), client.models):
                with pytest.raises(VomniError) as raised:
                    await call()
                caught.append(raised.value)
            stream = await client.chat_stream("hi")
            with pytest.raises(StreamError) as raised:
                await stream.finish()
            caught.append(raised.value)

    asyncio.run(main())
    assert len(caught) == 8
    for error in caught:
        _no_key(error)
    stream_error = caught[3]
    assert isinstance(stream_error, StreamError) and stream_error.partial == "hello *** "


def test_everything_a_hostile_server_causes_is_one_of_ours(hostile: Callable[..., HostileServer]) -> None:
    # One sweep over every mode and every client call: only vomni_nb.errors types come out.
    calls: dict[str, Callable[[OmniClient], Any]] = {
        "image": lambda c: c.image("x"), "chat": lambda c: c.chat("x"), "speak": lambda c: c.speak("x"),
        "models": lambda c: c.models(), "health": lambda c: c.health(), "version": lambda c: c.version(),
        "stream": lambda c: c.chat_stream("x").finish(), "speech": lambda c: c.speak_stream("x").finish(),
        "voices": lambda c: c.voices.list(), "batch": lambda c: c.speak_batch(["x", "y"]),
        "jobs": lambda c: c.video_jobs(), "wait": lambda c: c.wait_video("j", poll_interval=0.01, timeout=1),
        "download": lambda c: c.download_video("j"),
    }
    for mode in ("redirect", "echo", "image-bomb", "wav-bomb", "deep-json", "rewritten", "sse-empty"):
        server = hostile(mode, "--size", "5000")
        with OmniClient(server.url, model="m", api_key=KEY, max_retries=0) as client:
            for name, call in calls.items():
                try:
                    call(client)
                except VomniError as error:
                    _no_key(error)


def test_a_rewritten_or_empty_stream_is_a_stream_error(hostile: Callable[..., HostileServer]) -> None:
    # A proxy that re-encodes the stream (brotli, never asked for), and a stream closed before its first byte.
    rewritten, empty = hostile("rewritten"), hostile("sse-empty")
    with OmniClient(rewritten.url, model="m") as client, \
            pytest.raises(StreamError, match="encoded as 'br', which this client did not ask for"):
        client.chat_stream("hi").finish()
    with OmniClient(empty.url, model="m") as client, \
            pytest.raises(StreamError, match="ended before its final event") as caught:
        client.chat_stream("hi").finish()
    assert caught.value.partial == ""


def test_a_stream_stops_at_the_byte_limit_keeping_what_arrived(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("sse-endless", "--size", str(64 * MiB))
    with PeakRSS() as peak, OmniClient(server.url, model="m", limits=Limits(max_stream_bytes=4 * MiB)) as client:
        stream = client.chat_stream("hi")
        with pytest.raises(StreamError, match=r"larger than 4 MiB.*Limits.max_stream_bytes. What arrived") as caught:
            stream.finish()
    assert caught.value.partial.startswith("lorem ipsum")
    assert _growth(peak, "64 MB stream, 4 MiB limit") < 32
