"""A hostile HTTP server for the client's security tests: it trickles, floods, bombs, redirects and echoes.

Run as its own process (``python -m tests.support.hostile MODE ...``), so what it holds never counts
in the client's RSS; it listens on 127.0.0.1 only, prints ``ready PORT`` once listening, and exits
after ``--lifetime`` seconds whatever happens. Every mode is bounded in size (``--size``) and time.

Modes (the attacks of issue 14, items 12-16):

- ``trickle``: one byte every ``--interval`` s; ``--phase headers`` from the status line on,
  ``body`` after whole JSON headers, ``sse`` after whole event-stream headers.
- ``big``: a JSON body of ``--size`` bytes, sent as fast as the client reads (no Content-Length).
- ``gzip``: ``Content-Encoding: gzip``, a small body that expands to ``--size`` bytes.
- ``sse-endless``: chat text deltas, as fast as the client reads, up to ``--size`` bytes.
- ``sse-line``: one event-stream line of ``--size`` bytes, never ended.
- ``redirect``: 302 to ``--location`` with a valid image answer as its body.
- ``echo``: every answer quotes the bearer key it was sent (error messages, bodies, an SSE error).
- ``image-bomb``: an image answer whose GIF claims 65535x65535 pixels.
- ``wav-bomb``: a speech answer whose WAV header has 0xFFFFFFFF sizes and sample rate.
- ``deep-json``: a 200 answer nested ``--size`` levels deep.
- ``rewritten``: an event stream whose ``Content-Encoding: br`` the client never asked for (a proxy
  rewriting answers).
- ``sse-empty``: event-stream headers, then the connection closes without a byte of body.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

__all__ = ["HostileServer", "launch_hostile"]

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class HostileServer:
    """A running hostile server (see the module docstring); ``stop()`` ends it."""

    mode: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def launch_hostile(mode: str, *args: str) -> HostileServer:
    """Start ``python -m tests.support.hostile MODE ARGS`` and wait for its ``ready PORT`` line."""
    process = subprocess.Popen([sys.executable, "-m", "tests.support.hostile", mode, *args], cwd=ROOT,
                               stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert process.stdout is not None
    line = process.stdout.readline().decode()  # the gzip bomb is made before listening: a second at most
    if not line.startswith("ready "):
        process.kill()
        process.wait(10)
        raise RuntimeError(f"the hostile server ({mode}) did not start: {line!r}")
    return HostileServer(mode, int(line.split()[1]), process)

PNG_8x4 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAECAIAAAA8r+mnAAAAEklEQVR4nGP8z4AdMOEQJ0MCAGSRAQfIidsoAAAAAElFTkSuQmCC")


def image_answer(png: bytes = PNG_8x4) -> bytes:
    return json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(png).decode()}]}).encode()


def head(status: str, content_type: str, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n{extra}\r\n").encode()


def with_length(status: str, content_type: str, body: bytes, extra: str = "") -> bytes:
    return head(status, content_type, f"Content-Length: {len(body)}\r\n{extra}") + body


def chat_chunk(text: str) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m", "modality": "text",
             "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


class Hostile:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.gzip_body = self._gzip_bomb(args.size) if args.mode == "gzip" else b""

    @staticmethod
    def _gzip_bomb(size: int) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        block = b"\0" * (1 << 20)
        parts = [packer.compress(block) for _ in range(size // len(block))]
        return b"".join(parts) + packer.flush()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            lines = request.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            length = min(int(headers.get("content-length", "0") or 0), 8 << 20)
            if length:
                await reader.readexactly(length)
            key = headers.get("authorization", "").removeprefix("Bearer ")
            await getattr(self, self.args.mode.replace("-", "_"))(writer, method, path.split("?")[0], key)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client gave up: that is what the attack waits for
        finally:
            writer.close()

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def flood(self, writer: asyncio.StreamWriter, piece: bytes, total: int) -> None:
        sent = 0
        while sent < total:
            await self.send(writer, piece)
            sent += len(piece)

    async def trickle(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        phase = self.args.phase
        if phase == "sse":
            await self.send(writer, head("200 OK", "text/event-stream"))
            payload = chat_chunk("a" * 64) * 100
        elif phase == "body":
            payload = image_answer()
            await self.send(writer, head("200 OK", "application/json", f"Content-Length: {len(payload)}\r\n"))
        else:
            payload = with_length("200 OK", "application/json", b'{"object": "list", "data": [{"id": "m"}]}')
        for byte in payload:
            await self.send(writer, bytes([byte]))
            await asyncio.sleep(self.args.interval)

    async def big(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        await self.send(writer, head("200 OK", "application/json") + b'{"data": "')
        await self.flood(writer, b"a" * 65536, self.args.size)

    async def gzip(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        await self.send(writer, with_length("200 OK", "application/json", self.gzip_body, "Content-Encoding: gzip\r\n"))

    async def sse_endless(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        await self.send(writer, head("200 OK", "text/event-stream"))
        await self.flood(writer, chat_chunk("lorem ipsum " * 5000), self.args.size)

    async def sse_line(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        await self.send(writer, head("200 OK", "text/event-stream") + b"data: ")
        await self.flood(writer, b"a" * 65536, self.args.size)

    async def redirect(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        await self.send(writer, with_length("302 Found", "application/json", image_answer(),
                                            f"Location: {self.args.location}\r\n"))

    async def echo(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        if path == "/v1/images/generations":
            body = {"error": {"message": f"Invalid value {key!r} for 'size'", "type": "BadRequestError",
                              "param": key, "code": 400}, "echo": [key, {"nested": key}]}
            await self.send(writer, with_length("400 Bad Request", "application/json", json.dumps(body).encode()))
        elif path == "/v1/audio/speech":
            await self.send(writer, with_length("500 Internal Server Error", "text/plain",
                                                f"engine failed while serving {key}".encode()))
        elif path == "/v1/chat/completions":
            error = {"error": {"message": f"engine died serving {key}", "type": "InternalServerError", "code": 500}}
            await self.send(writer, head("200 OK", "text/event-stream") + chat_chunk(f"hello {key} ")
                            + b"data: " + json.dumps(error).encode() + b"\n\n")
        else:  # a 200 whose body is not JSON: the parser's error quotes it
            await self.send(writer, with_length("200 OK", "application/json", f"{key} is not JSON".encode()))

    async def image_bomb(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        gif = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00" + b"\x2c" + b"\x00" * 9 + b"\x02\x02\x00;"
        await self.send(writer, with_length("200 OK", "application/json", image_answer(gif)))

    async def wav_bomb(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        wav = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 1, 0xFFFFFFFF,
                          0xFFFFFFFF, 2, 16, b"data", 0xFFFFFFFF) + b"\x00\x01" * 64
        await self.send(writer, with_length("200 OK", "audio/wav", wav))

    async def deep_json(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        body = b"[" * self.args.size + b"]" * self.args.size
        await self.send(writer, with_length("200 OK", "application/json", body))


    async def rewritten(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        await self.send(writer, head("200 OK", "text/event-stream", "Content-Encoding: br\r\n") + b"\x1b\x03\x00" * 8)

    async def sse_empty(self, writer: asyncio.StreamWriter, method: str, path: str, key: str) -> None:
        await self.send(writer, head("200 OK", "text/event-stream"))


async def serve(args: argparse.Namespace) -> None:
    hostile = Hostile(args)
    server = await asyncio.start_server(hostile.handle, "127.0.0.1", 0)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await asyncio.sleep(args.lifetime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["trickle", "big", "gzip", "sse-endless", "sse-line", "redirect", "echo",
                                         "image-bomb", "wav-bomb", "deep-json", "rewritten", "sse-empty"])
    parser.add_argument("--phase", choices=["headers", "body", "sse"], default="headers")
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=64 << 20)
    parser.add_argument("--location", default="http://elsewhere.invalid/steal")
    parser.add_argument("--lifetime", type=float, default=90.0)
    args = parser.parse_args()
    if args.size > 1 << 30:
        sys.exit("--size is bounded at 1 GiB")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
