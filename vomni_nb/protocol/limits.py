"""How much a client accepts from a server it may not control: sizes, nesting and stream durations.

A server can be slow, broken or hostile (a proxy, a shared endpoint, a URL from a notebook found on
the web). Every bound below turns what would be unbounded memory or time into a clear error that
names the limit and how to raise it. The defaults sit far above what a real vLLM-Omni answer needs
(a 2048x2048 PNG in base64 is ~16 MB; an hour of 24 kHz speech ~170 MB), so only a broken or
hostile server meets them.

Time bounds that are not here come from the client's ``timeout``: each request must be answered
*whole* within it (not only between two reads), and a stream must deliver an event at least that
often. ``stream_timeout`` bounds a stream's whole duration, which may rightly be longer.
:class:`StreamBounds` counts one stream against its limits (the stream states use it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from vomni_nb.errors import InvalidRequestError, StreamError

__all__ = ["Limits", "DEFAULT_LIMITS", "MAX_JSON_DEPTH", "StreamBounds", "format_size"]

MiB = 1 << 20

# A vLLM-Omni answer nests about 6 deep; json.loads recurses in C and then raises RecursionError.
MAX_JSON_DEPTH = 64


@dataclasses.dataclass(frozen=True)
class Limits:
    """The bounds a client puts on what a server sends (``OmniClient(url, limits=Limits(...))``).

    ``max_body_bytes``: one whole answer as sent (before decompression). ``max_decoded_bytes``: the
    same answer after gzip/deflate decoding, so a small compressed bomb cannot expand without end.
    ``max_stream_bytes``: everything one stream delivers, decoded (text, audio, images).
    ``max_stream_text``: the characters of text one stream collects. ``max_line_bytes``: one line of
    a Server-Sent Events stream (a streamed image arrives as one line). ``stream_timeout``: seconds
    a stream may last in all (None: no bound; the gap between events is still bounded by ``timeout``).
    """

    max_body_bytes: int = 256 * MiB
    max_decoded_bytes: int = 256 * MiB
    max_stream_bytes: int = 512 * MiB
    max_stream_text: int = 16 * MiB
    max_line_bytes: int = 32 * MiB
    stream_timeout: float | None = 3600.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "stream_timeout":
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
                    raise InvalidRequestError(f"Limits.stream_timeout must be a positive number of seconds or None; "
                                              f"got {value!r}.")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequestError(f"Limits.{field.name} must be a positive whole number; got {value!r}.")


DEFAULT_LIMITS = Limits()


def format_size(size: int) -> str:
    """``268435456`` -> ``"256 MiB"``: limits in messages read as people set them."""
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


class StreamBounds:
    """Counts what a stream received and collected against its Limits; past one, StreamError keeps the partial."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.received = 0
        self.text = 0

    # ``partial`` is called only when a limit is passed: building it for every chunk would cost the square.
    def body(self, size: int, partial: Callable[[], Any], url: str | None) -> None:
        self.received += size
        if self.received > self.limits.max_stream_bytes:
            raise self._exceeded(f"more than {format_size(self.limits.max_stream_bytes)}", "max_stream_bytes",
                                 partial, url)

    def more_text(self, size: int, partial: Callable[[], Any], url: str | None) -> None:
        self.text += size
        if self.text > self.limits.max_stream_text:
            raise self._exceeded(f"more than {self.limits.max_stream_text:,} characters of text",
                                 "max_stream_text", partial, url)

    @staticmethod
    def _exceeded(what: str, name: str, partial: Callable[[], Any], url: str | None) -> StreamError:
        return StreamError(f"The stream sent {what}: stopped there (no answer needs that much; is the server "
                           f"stuck?). What arrived is in .partial. If you trust this server, raise Limits.{name}.",
                           url=url, partial=partial())
