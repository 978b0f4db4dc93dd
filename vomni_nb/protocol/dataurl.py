"""``data:`` URLs, as chat content parts carry images and audio."""

from __future__ import annotations

import base64
import binascii
import urllib.parse

from vomni_nb.errors import ResponseFormatError

__all__ = ["encode_data_url", "decode_data_url", "decode_base64"]


def encode_data_url(data: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def decode_base64(text: str, what: str = "base64 data") -> bytes:
    """Strict base64 decoding; bad input raises ResponseFormatError, not binascii.Error."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ResponseFormatError(f"The server sent {what} that is not valid base64 ({exc}).") from exc


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``data:<mime>[;params][;base64],<payload>`` -> (mime type, bytes). Raises ResponseFormatError."""
    if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
        raise ResponseFormatError(f"Expected a data: URL, got {str(url)[:40]!r}.")
    header, payload = url[5:].split(",", 1)
    parts = header.split(";")
    mime = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        return mime, decode_base64(payload, "a data: URL")
    return mime, urllib.parse.unquote_to_bytes(payload)
