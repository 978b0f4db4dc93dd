"""Issue 14 items 5, 6 and 7: bodies, slow clients, floods and web pages, against real vomni-sim processes.

Raw sockets send exactly the half-requests an attacker would; the server's answers are read back and its
peak RSS growth bounded. Timeouts are shortened with their flags so the tests stay fast.
"""

from __future__ import annotations

import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.support.attacks import MiB, PeakRss, error_of, raw_request, read_response, wav_bytes
from tests.support.sims import IMAGE_MODEL, TTS_MODEL, VIDEO_MODEL

EVIL = "http://evil.example"


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    """A JSON body streamed in chunks (no Content-Length), ``total`` bytes long."""
    yield b'{"prompt": "'
    sent = 12
    while sent < total - 2:
        piece = b"a" * min(size, total - 2 - sent)
        sent += len(piece)
        yield piece
    yield b'"}'


def test_declared_oversized_body_is_refused_before_it_is_read(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL, "--body-timeout", "1")
    head = (f"POST /v1/audio/voices HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {400 * MiB}\r\n\r\n").encode()
    with PeakRss(sim.process.pid) as rss, raw_request(sim.port, head + b"--b\r\n" + b"x" * 65536) as sock:
        status, body = read_response(sock)
        assert sock.recv(1024) == b""  # the rest never comes: closed at --body-timeout, with no second answer
    assert status == 413
    assert json.loads(body)["error"]["message"] == (
        "Request body is larger than vomni-sim accepts (33554432 bytes, --max-body-size); send less or raise the limit."
    )
    assert rss.growth_mb < 10


def test_chunked_json_body_is_cut_off_at_the_limit(start_sim: Any) -> None:
    sim = start_sim(IMAGE_MODEL, "--max-json-body-size", str(4 * MiB))
    headers = {"Content-Type": "application/json"}
    assert httpx.post(sim.url + "/v1/images/generations", json={"prompt": "w", "size": "64x64"}).status_code == 200
    with PeakRss(sim.process.pid) as rss:
        response = httpx.post(sim.url + "/v1/images/generations", content=_chunks(24 * MiB), headers=headers,
                              timeout=60)
    assert error_of(response, 413)["message"].startswith("Request body is larger than vomni-sim accepts (4194304 bytes")
    assert rss.growth_mb < 24, f"a 24 MB chunked body grew the server by {rss.growth_mb:.0f} MB"


def test_json_with_a_million_values_is_refused_before_parsing(start_sim: Any) -> None:
    sim = start_sim(IMAGE_MODEL)
    body = b'{"messages": [' + b"{}," * 1_000_000 + b'{}], "size": "64x64"}'  # 3 MB; ~150 MB once parsed
    with PeakRss(sim.process.pid) as rss:
        response = httpx.post(sim.url + "/v1/chat/completions", content=body,
                              headers={"Content-Type": "application/json"}, timeout=60)
    assert error_of(response, 400)["message"].startswith("JSON body has more than 262144 values")
    assert rss.growth_mb < 20, f"a 3 MB JSON bomb grew the server by {rss.growth_mb:.0f} MB"


def test_unused_file_part_is_not_spooled_beyond_the_limit(start_sim: Any, tmp_path: Any) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    sim = start_sim(VIDEO_MODEL, "--max-body-size", str(8 * MiB), env={"TMPDIR": str(spool)})

    def multipart() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\np\r\n'
        yield b'--b\r\nContent-Disposition: form-data; name="unused"; filename="x.bin"\r\n\r\n'
        for _ in range(64):  # 64 MB that no route reads
            yield b"\0" * MiB
        yield b"\r\n--b--\r\n"

    with PeakRss(sim.process.pid) as rss:
        response = httpx.post(sim.url + "/v1/videos", content=multipart(),
                              headers={"Content-Type": "multipart/form-data; boundary=b"}, timeout=60)
    assert error_of(response, 413)["message"].startswith("Request body is larger than vomni-sim accepts (8388608 bytes")
    assert rss.growth_mb < 24
    assert httpx.get(sim.url + "/v1/videos").json()["data"] == []


def test_bodies_held_at_once_share_one_budget(start_sim: Any) -> None:
    sim = start_sim(IMAGE_MODEL, "--max-body-memory", str(8 * MiB), "--body-timeout", "2")
    head = (f"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {7 * MiB}\r\n\r\n").encode()
    with raw_request(sim.port, head + b'{"prompt": "' + b"a" * (6 * MiB)) as first:  # held, never finished
        time.sleep(0.5)
        with raw_request(sim.port, head + b'{"prompt": "' + b"a" * (6 * MiB)) as second:
            status, body = read_response(second)
        assert status == 503
        assert "(--max-body-memory); retry in a moment." in json.loads(body)["error"]["message"]
        status, body = read_response(first)  # the stalled one is timed out and its budget returned
        assert status == 408
    assert httpx.post(sim.url + "/v1/images/generations", json={"prompt": "p", "size": "64x64"}).status_code == 200


def _trickle(sock: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            sock.sendall(b"x")
        except OSError:
            return
        time.sleep(0.2)


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_trickling_clients_are_timed_out(start_sim: Any, phase: str) -> None:
    sim = start_sim(IMAGE_MODEL, "--header-timeout", "1", "--body-timeout", "1")
    start = b"GET /health HTTP/1.1\r\nX-Slow: " if phase == "headers" else (
        b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n")
    stop = threading.Event()
    with raw_request(sim.port, start, timeout=30) as sock:
        trickler = threading.Thread(target=_trickle, args=(sock, stop))
        trickler.start()  # one byte every 0.2 s: the clock is not reset by each byte
        try:
            status, body = read_response(sock)
        finally:
            stop.set()
            trickler.join()
    assert status == 408
    flag = "--header-timeout" if phase == "headers" else "--body-timeout"
    assert json.loads(body)["error"]["message"].endswith(f"within 1 s ({flag}); the connection was closed.")


def test_health_answers_while_a_thousand_half_sent_requests_are_open(start_sim: Any) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = 1000
    if soft < count + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 200), hard))
    sim = start_sim(IMAGE_MODEL, "--max-connections", "200")
    requests = [b"GET /health HTTP/1.1\r\nHost: x\r\nX-Half: ",  # headers never finished
                b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"]  # body never
    sockets: list[socket.socket] = []
    try:
        with PeakRss(sim.process.pid) as rss:
            for index in range(count):
                sockets.append(raw_request(sim.port, requests[index % 2]))
            assert httpx.get(sim.url + "/health", timeout=30).json() == {"status": "healthy"}
        open_fds = psutil.Process(sim.process.pid).num_fds()
    finally:
        for sock in sockets:
            sock.close()
    assert open_fds < 200 + 128, f"the server holds {open_fds} descriptors"
    assert rss.growth_mb < 40, f"{count} half-sent requests grew the server by {rss.growth_mb:.0f} MB"
    log = sim.log()
    assert log.count("closed the oldest one that was waiting on its client") <= 50  # rate-limited


def test_a_flood_of_bad_requests_makes_a_few_log_lines(start_sim: Any) -> None:
    sim = start_sim(IMAGE_MODEL)
    before = len(sim.log())
    for _ in range(600):
        with raw_request(sim.port, b"NOT HTTP AT ALL\r\n\r\n") as sock:
            read_response(sock)
    assert httpx.get(sim.url + "/health").status_code == 200
    flood = sim.log()[before:]
    assert 1 <= flood.count("Invalid HTTP request received.") <= 50
    assert len(flood) < 10_000, f"600 bad requests wrote {len(flood)} bytes of log"


def test_web_pages_cannot_drive_the_simulator_by_default(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL)
    form = {"name": "planted", "consent": "c"}
    files = {"audio_sample": ("s.wav", wav_bytes(2.0), "audio/wav")}
    # A page may send a multipart form without a preflight; the browser still sends its Origin.
    simple = httpx.post(sim.url + "/v1/audio/voices", data=form, files=files, headers={"Origin": EVIL})
    assert error_of(simple, 403)["message"].startswith(f"Cross-origin requests are refused (Origin: {EVIL}).")
    assert "planted" not in httpx.get(sim.url + "/v1/audio/voices").json()["voices"]
    preflight = httpx.options(sim.url + "/v1/audio/speech",
                              headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers
    # DNS rebinding: the page's own origin, but under a name that is not an address.
    rebound = httpx.get(sim.url + "/v1/models", headers={"Host": f"evil.example:{sim.port}",
                                                         "Origin": f"http://evil.example:{sim.port}"})
    assert rebound.status_code == 403
    same_origin = httpx.get(sim.url + "/v1/models", headers={"Origin": f"http://127.0.0.1:{sim.port}"})
    assert same_origin.status_code == 200
    assert httpx.get(sim.url + "/v1/models").status_code == 200  # clients that are not browsers send no Origin


def test_allowed_origins_opens_cors_as_on_the_real_server(start_sim: Any) -> None:
    page = "http://localhost:8888"
    sim = start_sim(IMAGE_MODEL, "--allowed-origins", json.dumps([page]))
    preflight = httpx.options(sim.url + "/v1/images/generations",
                              headers={"Origin": page, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == page
    assert httpx.get(sim.url + "/v1/models", headers={"Origin": page}).headers["access-control-allow-origin"] == page
    assert httpx.get(sim.url + "/v1/models", headers={"Origin": EVIL}).status_code == 403
