"""Tools for attacking a vomni-sim process on 127.0.0.1: small bombs, raw sockets, and a peak-RSS probe.

Every payload is built in the test process without holding what it expands to (a 9400x9400 PNG is
compressed row by row; ten minutes of FLAC silence is encoded second by second).
"""

from __future__ import annotations

import functools
import io
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import numpy as np
import psutil

from tests.support.sims import STARTUP_TIMEOUT, SimHandle, launch_sim

__all__ = [
    "PeakRss", "zero_png", "flac_silence", "wav_bytes", "raw_request", "read_response", "error_of", "MiB",
    "launch_many",
]

MiB = 1024 * 1024


class PeakRss:
    """The peak resident memory of process ``pid`` while the block runs, sampled every millisecond.

    ``growth_mb`` is the peak minus the RSS when the block started: what the attack cost the server.
    """

    def __init__(self, pid: int, interval: float = 0.001) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._rss())
            except psutil.Error:
                return
            time.sleep(self.interval)

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        time.sleep(0.05)  # the server frees after it answers; the peak is already behind us
        self._stop.set()
        self._thread.join()
        print(f"server peak RSS growth: {self.growth_mb:.1f} MB")  # shown by pytest -rP, for reports

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / MiB


@functools.lru_cache(maxsize=4)
def zero_png(width: int, height: int) -> bytes:
    """An all-zero RGB PNG of any size, a few hundred KB for 9400x9400 (built row by row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(1 + width * 3)  # filter byte 0, then black pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@functools.lru_cache(maxsize=4)
def flac_silence(seconds: int, rate: int = 48000) -> bytes:
    """``seconds`` of FLAC silence: a few hundred bytes per second of audio."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as output:
        stream: Any = output.add_stream("flac", rate=rate, layout="mono")
        for second in range(seconds):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, rate), dtype=np.int16), format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = second * rate
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def wav_bytes(seconds: float, rate: int = 16000, hz: float = 220.0) -> bytes:
    """A short tone as a 16-bit mono WAV."""
    import wave

    t = np.arange(int(rate * seconds)) / rate
    pcm = (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> socket.socket:
    """A connected socket that has sent ``data`` (possibly half a request)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(data)
    return sock


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and body of the response on ``sock`` (read until the server closes or the body is complete)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The ``error`` object of a vLLM error body, after checking its shape; never Python's exception text."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert list(body) == ["error"], body
    error = dict(body["error"])
    assert set(error) >= {"message", "type", "param", "code"} and error["code"] == status, error
    assert "Traceback" not in error["message"] and "/site-packages/" not in error["message"], error
    return error


def launch_many(models: tuple[str, ...], *args: str, log_dir: Path) -> dict[str, SimHandle]:
    """One server per model, started together (start-up is mostly imports: in parallel it costs one)."""
    started = {model: launch_sim(model, *args, log_dir=log_dir, wait=False) for model in models}
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for handle in started.values():
        while True:
            try:
                if httpx.get(handle.url + "/health", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if handle.process.poll() is not None or time.monotonic() > deadline:
                for other in started.values():
                    other.stop()
                raise RuntimeError(f"{handle.model} did not start:\n{handle.log()[-3000:]}")
            time.sleep(0.05)
    return started
