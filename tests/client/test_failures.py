"""Timeouts and broken connections on real servers (issue 16 item 11): what is retried, what is not, and
what a stream keeps when it is cut.

- connect timeout (nothing was sent: retried) vs read timeout (the server has the request: never);
- a stalled stream (no event within the timeout) and a stream cut before its final event;
- ``video(timeout=)`` ends the client's wait and leaves the job to the server;
- a real broken read after the headers (the server killed mid-stream), in both clients;
- the async client's transport failures (refused, killed mid-request).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb.errors import APIConnectionError, APITimeoutError, JobTimeoutError, StreamError
from vomni_nb.protocol.limits import Limits
from vomni_nb.protocol.sse import SSEEvent
from vomni_nb.protocol.streaming import ChatStreamState
from vomni_nb.provenance import Provenance
from tests.support.hostile import HostileServer
from tests.support.sims import IMAGE_MODEL, OMNI_MODEL, VIDEO_MODEL, SimHandle, free_port


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(0.02)


def _in_flight(sim: SimHandle) -> int:
    return int(httpx.get(sim.url + "/load", timeout=5).json()["server_load"])


def _kill_when(sim: SimHandle, condition: Callable[[], bool]) -> threading.Thread:
    def kill() -> None:
        _wait_until(condition, "the request under way")
        sim.process.send_signal(signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A port whose listener never accepts and whose queue is full: a connection attempt just waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # enough to fill the accept queue; later SYNs are dropped, not refused
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_a_connect_timeout_is_retried_but_a_read_timeout_is_not(unanswering_port: int, start_sim) -> None:  # type: ignore[no-untyped-def]
    waits: list[float] = []
    timeout = httpx.Timeout(5.0, connect=0.3)
    with OmniClient(f"http://127.0.0.1:{unanswering_port}", model="m", timeout=timeout, sleep=waits.append,
                    max_retries=2) as client:
        with pytest.raises(APITimeoutError, match="after 0.3 s"):
            client.models()
    assert len(waits) == 2  # nothing reached the server: resending is safe
    slow = start_sim(IMAGE_MODEL, "--latency", "30")
    waits.clear()
    with OmniClient(slow.url, model=IMAGE_MODEL, timeout=httpx.Timeout(0.5, connect=5.0), sleep=waits.append) as client:
        with pytest.raises(APITimeoutError, match="after 0.5 s"):
            client.image("a fox", size="64x64")
    assert waits == []  # the server has the request: resending could run it twice
    assert slow.wait_for_log("aborted.")  # and the dropped connection made it abort


def test_a_stalled_stream_times_out_between_events(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(OMNI_MODEL, "--tokens-per-second", "0.2")  # one token every 5 s
    with OmniClient(sim.url, model=OMNI_MODEL, timeout=1.0) as client:
        stream = client.chat_stream("Tell me a story", modalities=["text"])
        with pytest.raises(APITimeoutError, match="sent no event after 1 s"):
            stream.finish()
        assert stream._response.is_closed
    assert sim.wait_for_log("aborted.")


def test_a_stream_cut_before_its_final_event_keeps_what_arrived(hostile: Callable[..., HostileServer]) -> None:
    server = hostile("sse-endless", "--size", "200000")  # ends the body cleanly, without [DONE]
    with OmniClient(server.url, model="m") as client:
        with pytest.raises(StreamError, match="ended before its final event") as caught:
            client.chat_stream("hi").finish()
    assert caught.value.partial.startswith("lorem ipsum")
    # The same through the state alone: a last line without its newline, or keep-alives only.
    for body in (b'data: {"choices": [{"delta": {"content": "so far"}}]}\n\ndata: [DONE]', b": keep-alive\n\n" * 3):
        state = ChatStreamState(Provenance(), limits=Limits())
        state.feed_body(body)
        with pytest.raises(StreamError, match="ended before its final event") as cut:
            state.end_body()
        assert cut.value.partial == ("so far" if b"so far" in body else "")
    assert ChatStreamState(Provenance()).feed(SSEEvent("[DONE]")) == []


def test_video_timeout_ends_the_wait_not_the_job(start_sim) -> None:  # type: ignore[no-untyped-def]
    # video(timeout=) bounds the client's wait (issue 7 item 13: the job is left running, no DELETE); the
    # job stays the server's to finish or to cancel (picking it up is tests/client/test_sync.py's).
    from vomni_nb.progress import JobStatusLine

    class Line:  # what a notebook's status line would show, kept as text
        def __init__(self) -> None:
            self.texts: list[str] = []

        def update(self, text: str, html_text: str | None = None) -> None:
            self.texts.append(text)

        def finish(self, text: str, html_text: str | None = None) -> None:
            self.texts.append(text)

    sim = start_sim(VIDEO_MODEL, "--latency", "30")
    line = Line()
    with OmniClient(sim.url, model=VIDEO_MODEL) as client:
        with pytest.raises(JobTimeoutError, match=r"not done after 0.5 s; it is still running") as caught:
            client.video("a boat", size="64x64", seconds=1, fps=8, poll_interval=0.4, timeout=0.5,
                         on_progress=JobStatusLine(line))
        job_id = caught.value.job_id
        # The status line's last word says the same time as the error: the timeout given (polls every 0.4 s
        # would have stopped at 0.8 s; the last wait ends at the timeout).
        assert line.texts[-1] == f"… {job_id}: still running after 0.5 s; resume with client.wait_video({job_id!r})"
        assert isinstance(caught.value, APITimeoutError) and f"DELETE /v1/videos/{job_id}" not in sim.log()
        assert [job["status"] for job in client.video_jobs() if job["id"] == job_id] in (["queued"], ["in_progress"])
        client.cancel_video(job_id)
    assert f"DELETE /v1/videos/{job_id}" in sim.wait_for_log(f"DELETE /v1/videos/{job_id}")


def test_a_real_broken_read_after_the_headers(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(OMNI_MODEL, "--tokens-per-second", "5")
    received: list[object] = []
    with OmniClient(sim.url, model=OMNI_MODEL) as client:
        stream = client.chat_stream("Tell me a long story", modalities=["text"])
        killer = _kill_when(sim, lambda: bool(received))
        with pytest.raises(StreamError, match="connection broke in the middle of the stream") as caught:
            for event in stream:
                received.append(event)
        killer.join(30)
    assert caught.value.partial and caught.value.partial == stream.text
    with pytest.raises(StreamError, match="connection broke"):
        stream.finish()  # finish() names what ended it, not "closed by this client"


def test_the_async_client_reports_transport_failures(start_sim) -> None:  # type: ignore[no-untyped-def]
    slow = start_sim(IMAGE_MODEL, "--latency", "30")
    chat = start_sim(OMNI_MODEL, "--tokens-per-second", "5")
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        async with AsyncOmniClient(f"http://127.0.0.1:{free_port()}", model="m", sleep=record) as client:
            with pytest.raises(APIConnectionError, match="connection refused"):
                await client.models()
        assert len(waits) == 2  # refused: nothing was sent, so it was retried
        waits.clear()
        killer = _kill_when(slow, lambda: _in_flight(slow) == 1)
        async with AsyncOmniClient(slow.url, model=IMAGE_MODEL, sleep=record) as client:
            with pytest.raises(APIConnectionError, match="failed mid-request"):
                await client.image("a fox", size="64x64")
        await asyncio.to_thread(killer.join, 30)
        assert waits == []
        received: list[object] = []
        async with AsyncOmniClient(chat.url, model=OMNI_MODEL) as client:
            stream = await client.chat_stream("Tell me a long story", modalities=["text"])
            killer = _kill_when(chat, lambda: bool(received))
            with pytest.raises(StreamError, match="connection broke") as caught:
                async for event in stream:
                    received.append(event)
            await asyncio.to_thread(killer.join, 30)
            assert caught.value.partial == stream.text

    asyncio.run(main())


def test_both_clients_bound_socket_waits_by_the_deadline() -> None:
    # The deadline layer sits in httpx's pool (a private attribute): an httpx upgrade that moves it fails here.
    from vomni_nb._deadline import has_deadlines

    with OmniClient("http://127.0.0.1:9", model="m") as client:
        assert has_deadlines(client._http._transport)

    async def main() -> None:
        async with AsyncOmniClient("http://127.0.0.1:9", model="m") as client:
            assert has_deadlines(client._http._transport)

    asyncio.run(main())


def test_a_transport_given_by_the_caller_still_meets_the_deadline_between_chunks(
        hostile: Callable[..., HostileServer]) -> None:
    # A caller's own transport has no deadline layer under httpx: the body loop checks between chunks.
    body = hostile("trickle", "--phase", "body", "--interval", "0.2")
    sse = hostile("trickle", "--phase", "sse", "--interval", "0.2")
    with OmniClient(body.url, model="m", timeout=1, transport=httpx.HTTPTransport(), max_retries=0) as client:
        with pytest.raises(APITimeoutError, match="No whole answer .* after 1 s"):
            client.image("a fox")
    with OmniClient(sse.url, model="m", timeout=1, transport=httpx.HTTPTransport()) as client:
        with pytest.raises(APITimeoutError, match="sent no event after 1 s"):
            client.chat_stream("hi").finish()


def test_answers_built_in_memory_are_read_too() -> None:
    # MockTransport, because what is tested is the in-memory response it hands back (a caller's own test
    # double does the same): no server, real or hostile, produces a body that is already read.
    answer = b'{"object": "list", "data": [{"id": "m"}]}'
    handler = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    with OmniClient("http://mock", transport=handler) as client:
        assert client.models() == ["m"]

    async def main() -> None:
        async_handler = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
        async with AsyncOmniClient("http://mock", transport=async_handler) as client:
            assert await client.models() == ["m"]

    asyncio.run(main())


def test_the_attach_probe_bounds_size_nesting_and_time(hostile: Callable[..., HostileServer]) -> None:
    from vomni_nb.errors import ServerManagerError
    from vomni_nb.server.probe import served_models, split_url

    big = hostile("big", "--size", str(8 << 20))
    deep = hostile("deep-json", "--size", "100000")
    trickle = hostile("trickle", "--phase", "body", "--interval", "0.2")
    with pytest.raises(ServerManagerError, match="larger than 1048576 bytes"):
        served_models(big.url)
    with pytest.raises(ServerManagerError, match="did not return an OpenAI model list"):
        served_models(deep.url)
    with pytest.raises(ServerManagerError, match=r"did not answer \(no whole answer within 1 s\)"):
        served_models(trickle.url, timeout=1.0)
    with pytest.raises(ServerManagerError, match="not an http"):
        split_url("ftp://host/x")
