"""A response body as it arrives: decompressed by us, within a size limit, before anything keeps it.

Sans-I/O: the clients feed raw (still encoded) chunks and get decoded bytes back. Rules:

1. The limit holds for the raw bytes and for the decoded ones: a 600 KB gzip body that would expand
   to 1 GB stops at the limit, and no single step expands past it (zlib's ``max_length``), so the
   memory a hostile body can take is the limit plus one network chunk.
2. Only the encodings the client asks for (gzip, deflate, see :data:`ACCEPT_ENCODING`) are decoded;
   any other is refused with a clear error rather than handed on as garbage.
3. A declared ``Content-Length`` past the limit is refused before a byte of the body is read.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from vomni_nb.errors import ResponseFormatError
from vomni_nb.protocol.limits import format_size

__all__ = ["BoundedBody", "ACCEPT_ENCODING"]

ACCEPT_ENCODING = "gzip, deflate"


class _Inflater:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), never more than ``room + 1`` bytes a step."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding == "gzip"
        self._decoder = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)
        self._started = False

    def decode(self, data: bytes, room: int) -> bytes:
        try:
            if not self._started and not self._gzip:
                self._started = True
                try:
                    return self._decoder.decompress(data, room + 1)
                except zlib.error:
                    self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, no zlib header
            self._started = True
            return self._decoder.decompress(data, room + 1)
        except zlib.error as exc:
            raise ResponseFormatError(f"The server sent a corrupt compressed body ({exc}).") from exc

    def drain(self) -> bytes:
        """What is still held back after the last input (input is only left over once a step reached its
        ``max_length``, which the caller has already refused, so this is at most zlib's last few bytes)."""
        try:
            return self._decoder.flush()
        except zlib.error as exc:
            raise ResponseFormatError(f"The server sent a corrupt compressed body ({exc}).") from exc


class BoundedBody:
    """Decode a body's raw chunks, refusing to go past ``limit`` bytes (raw or decoded).

    ``what`` and ``setting`` name the body and the limit in the error (``"The answer from URL"``,
    ``"Limits.max_body_bytes"``).
    """

    def __init__(self, headers: Mapping[str, str], limit: int, *, what: str, setting: str,
                 decoded_limit: int | None = None, decoded_setting: str | None = None) -> None:
        self.limit = limit
        self.decoded_limit = limit if decoded_limit is None else decoded_limit
        self.raw_size = 0
        self.decoded_size = 0
        self._what, self._setting = what, setting
        self._decoded_setting = decoded_setting or setting
        declared = (headers.get("content-length") or "").strip()
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise self._too_large(f"declares {int(declared):,} bytes, more than {format_size(limit)}", setting)
        encodings = [e.strip().lower() for e in (headers.get("content-encoding") or "").split(",")]
        encodings = [e for e in encodings if e and e != "identity"]
        if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "deflate", "x-gzip")):
            raise ResponseFormatError(
                f"{self._what} is encoded as {', '.join(encodings)!r}, which this client did not ask for "
                f"(it accepts {ACCEPT_ENCODING}): is something in between rewriting answers?")
        self._inflater = _Inflater("gzip" if encodings and encodings[0] in ("gzip", "x-gzip") else "deflate") \
            if encodings else None

    def feed(self, raw: bytes) -> bytes:
        """The decoded bytes of the next raw chunk."""
        self.raw_size += len(raw)
        if self.raw_size > self.limit:
            raise self._too_large(f"is larger than {format_size(self.limit)}", self._setting)
        if self._inflater is None:
            return self._count(raw)
        return self._count(self._inflater.decode(raw, self.decoded_limit - self.decoded_size))

    def end(self) -> bytes:
        """The body ended: whatever the decoder still held."""
        if self._inflater is None:
            return b""
        return self._count(self._inflater.drain())

    def _count(self, decoded: bytes) -> bytes:
        self.decoded_size += len(decoded)
        if self.decoded_size > self.decoded_limit:
            raise self._too_large(f"expands past {format_size(self.decoded_limit)} when decompressed (a "
                                  "compression bomb?)", self._decoded_setting)
        return decoded

    def _too_large(self, detail: str, setting: str) -> ResponseFormatError:
        return ResponseFormatError(f"{self._what} {detail}: refused, nothing past the limit was kept. No API "
                                   f"answer needs that much; if you trust this server, raise {setting}.")
