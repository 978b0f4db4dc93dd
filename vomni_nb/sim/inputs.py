"""Decoding what clients upload (images, audio) without letting a small file become a large allocation.

Rule 1: read the size from the header and refuse before decoding (a 343 KB PNG can claim 9400x9400).
Rule 2: decode audio incrementally and stop at the limit (250 KB of FLAC silence is hours of samples).
Rule 3: only the container formats a client could mean are opened; ffmpeg's playlist and concat
demuxers, which open other files, are never reachable.
Everything here runs in a worker thread and raises ValueError (a 400) or LimitExceeded (a 400 that names
the flag); no decoder's own exception type escapes.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from vomni_nb.sim.limits import LimitExceeded, Limits

__all__ = ["open_image", "check_input_image", "decode_audio", "AudioTooLong", "audio_container", "IMAGE_FORMATS"]

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_SAMPLE_RATE = 384_000
MAX_AUDIO_FRAMES = 200_000  # decoded frames; a file of empty frames must not loop forever either


def check_input_image(width: int, height: int, limits: Limits) -> None:
    """Refuse an input image by its header size (LimitExceeded)."""
    if width * height > limits.max_input_image_pixels:
        raise LimitExceeded(
            f"Input image is {width}x{height} = {width * height} pixels; vomni-sim decodes at most "
            f"{limits.max_input_image_pixels} (--max-input-image-pixels). Send a smaller image."
        )
    if width > limits.max_side or height > limits.max_side:
        raise LimitExceeded(
            f"Input image is {width}x{height} pixels; vomni-sim accepts at most {limits.max_side} pixels on a side "
            "(--max-side)."
        )


def open_image(data: bytes, limits: Limits) -> Image.Image:
    """A decoded image, refused from its header when it claims too many pixels."""
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:  # a header claiming billions of pixels
        raise LimitExceeded(f"Input image refused: {exc} (--max-input-image-pixels)") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error, EOFError) as exc:
        raise ValueError(f"Failed to decode input image: {exc}") from exc
    check_input_image(image.width, image.height, limits)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, struct.error, EOFError, MemoryError) as exc:
        raise ValueError(f"Failed to decode input image: {exc}") from exc
    return image


class AudioTooLong(ValueError):
    """Decoding passed the limit and stopped; ``seconds`` is how much was decoded, ``claimed`` the header's."""

    def __init__(self, seconds: float, claimed: float | None, limit: float) -> None:
        self.seconds = seconds
        self.claimed = claimed
        self.limit = limit
        shown = f"{claimed:.1f}s" if claimed is not None and claimed > limit else f"more than {limit:.1f}s"
        super().__init__(f"Reference audio too long ({shown}). Maximum {limit:.0f}s supported — use a shorter clip.")


def audio_container(head: bytes) -> str:
    """The demuxer for a file's first bytes (ValueError for anything else)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "aac" if head[1] & 0x06 == 0 else "mp3"  # ADTS has layer bits 00; MPEG audio never does
    raise ValueError("unrecognised audio container (send WAV, FLAC, Ogg, MP3, AAC, MP4 or WebM)")


def _mono(frame: object) -> np.ndarray:
    array = frame.to_ndarray().astype(np.float32)  # type: ignore[attr-defined]
    if frame.format.is_planar or array.shape[0] > 1:  # type: ignore[attr-defined]
        return (array.mean(axis=0) if array.ndim > 1 else array).ravel()
    return array.reshape(-1, len(frame.layout.channels)).mean(axis=1)  # type: ignore[attr-defined]


def _frames(container: object, stream: object) -> Iterator[object]:
    for count, frame in enumerate(container.decode(stream)):  # type: ignore[attr-defined]
        if count >= MAX_AUDIO_FRAMES:
            raise ValueError(f"more than {MAX_AUDIO_FRAMES} audio frames")
        yield frame


def decode_audio(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate, decoded until ``max_seconds`` (then AudioTooLong)."""
    import av

    fmt = audio_container(data[:16])
    chunks: list[np.ndarray] = []
    rate = 0
    decoded = 0.0
    try:
        with av.open(io.BytesIO(data), format=fmt) as container:
            if not container.streams.audio:
                raise ValueError("no audio stream")
            stream = container.streams.audio[0]
            claimed = float(container.duration) / 1_000_000 if container.duration else None
            for frame in _frames(container, stream):
                frame_rate = int(frame.sample_rate)  # type: ignore[attr-defined]
                if not 0 < frame_rate <= MAX_SAMPLE_RATE or (rate and frame_rate != rate):
                    raise ValueError(f"unsupported sample rate {frame_rate}")
                rate = frame_rate
                decoded += frame.samples / rate  # type: ignore[attr-defined]
                if decoded > max_seconds:
                    raise AudioTooLong(decoded, claimed, max_seconds)
                chunks.append(_mono(frame))
    except ValueError:  # AudioTooLong, our own checks, and PyAV's InvalidDataError
        raise
    except Exception as exc:  # noqa: BLE001 - FFmpeg reports bad input in many types; each is a bad upload
        raise ValueError(str(exc) or type(exc).__name__) from exc
    if not chunks or rate <= 0:
        raise ValueError("no audio frames")
    return np.concatenate(chunks), rate
