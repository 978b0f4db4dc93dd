"""Media inputs (images, audio, a video's first frame) from bytes, a path or a result, with their MIME type."""

from __future__ import annotations

import dataclasses
import mimetypes
import os
from pathlib import Path
from typing import Any, Union

from vomni_nb.errors import InvalidRequestError

__all__ = ["MediaFile", "MediaSource", "load_media", "sniff_mime"]


@dataclasses.dataclass(frozen=True)
class MediaFile:
    filename: str
    data: bytes
    mime_type: str


MediaSource = Union[bytes, str, "os.PathLike[str]", MediaFile, Any]


def load_media(source: MediaSource, default_mime: str = "application/octet-stream") -> MediaFile:
    """bytes, a file path, a MediaFile, or a result object (anything with ``.data``/``.audio`` and ``.mime_type``)."""
    if isinstance(source, MediaFile):
        return source
    if isinstance(source, (bytes, bytearray)):
        return MediaFile("upload", bytes(source), sniff_mime(bytes(source)) or default_mime)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InvalidRequestError(f"No such file: {str(path)!r}.")
        data = path.read_bytes()
        mime = mimetypes.guess_type(path.name)[0] or sniff_mime(data) or default_mime
        return MediaFile(path.name, data, mime)
    payload = getattr(source, "data", None)
    if not isinstance(payload, bytes):
        payload = getattr(source, "audio", None)
    if isinstance(payload, bytes):
        mime = str(getattr(source, "mime_type", "") or sniff_mime(payload) or default_mime)
        return MediaFile("upload" + (mimetypes.guess_extension(mime) or ""), payload, mime)
    raise InvalidRequestError(f"Cannot use {type(source).__name__} as media: pass bytes, a file path or a result.")


def sniff_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return None
