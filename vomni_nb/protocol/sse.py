"""An incremental Server-Sent Events decoder: bytes in (any split), events out.

Follows the WHATWG rules a client needs: LF, CR or CRLF line ends (a CRLF split across two chunks
counts once), ``:`` comment lines, ``event:`` names, several ``data:`` lines joined by ``\\n``, one
optional space after the colon, and an event dispatched at each blank line; at the end of the body
an event without its blank line is dropped.

Rules for untrusted streams: each byte is scanned once (a 50 MB line costs what 50 MB of short lines
cost, not the square of it), and a line or an event's data longer than ``max_line_bytes`` raises
ResponseFormatError instead of growing without end.
"""

from __future__ import annotations

import dataclasses
import re

from vomni_nb.errors import ResponseFormatError
from vomni_nb.protocol.limits import DEFAULT_LIMITS, format_size

__all__ = ["SSEEvent", "SSEDecoder"]

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclasses.dataclass(frozen=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed it bytes with :meth:`feed`; it returns the events completed so far."""

    def __init__(self, max_line_bytes: int = DEFAULT_LIMITS.max_line_bytes) -> None:
        self.max_line_bytes = max_line_bytes
        self._line = bytearray()  # the start of a line whose end has not arrived yet
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._data: list[str] = []
        self._data_size = 0
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        start = 1 if self._skip_lf and chunk[:1] == b"\n" else 0
        self._skip_lf = False
        if b"\n" not in chunk and b"\r" not in chunk:  # the middle of a long line: memchr speed, no regex
            self._check_length(len(self._line) + len(chunk))
            self._line += chunk
            return events
        for found in _LINE_END.finditer(chunk, start):
            piece = chunk[start:found.start()]
            if self._line:
                self._check_length(len(self._line) + len(piece))
                self._line += piece
                line = bytes(self._line)
                self._line.clear()
            else:
                self._check_length(len(piece))
                line = piece
            event = self._dispatch(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
            start = found.end()
            if start == len(chunk) and found.group() == b"\r":
                self._skip_lf = True
        rest = len(chunk) - start
        if rest:
            self._check_length(len(self._line) + rest)
            self._line += chunk[start:]
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: a last line without its newline still counts; an unterminated event is dropped."""
        events: list[SSEEvent] = []
        if self._line:
            event = self._dispatch(self._line.decode("utf-8", errors="replace"))
            self._line.clear()
            if event is not None:
                events.append(event)
        self._data, self._data_size, self._event = [], 0, ""
        return events

    def _check_length(self, size: int) -> None:
        if size > self.max_line_bytes:
            raise ResponseFormatError(
                f"The server sent an event-stream line longer than {format_size(self.max_line_bytes)}: refused "
                "(no API answer needs one). If you trust this server, raise Limits.max_line_bytes.")

    def _dispatch(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(data="\n".join(self._data), event=self._event or "message", id=self._id)
            self._data, self._data_size, self._event = [], 0, ""
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            # Many data lines make one event: bound their sum as one line is bounded.
            self._data_size += len(value) + 1
            self._check_length(self._data_size)
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None
