"""What an MP4 file says about itself: the video track's width, height, frame count and duration.

Read from the boxes (ISO/IEC 14496-12): ``moov/mvhd`` (movie time scale and duration),
``moov/trak/tkhd`` (a track's width and height, 16.16 fixed point: the video track is the one with a
size), its ``mdia/mdhd`` (the track's own time scale and duration) and ``mdia/minf/stbl/stsz``
(its sample count: one sample per frame). Pure and forgiving: anything unreadable is None.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterator

__all__ = ["VideoInfo", "mp4_info"]

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    duration_s: float | None = None

    @property
    def fps(self) -> float | None:
        if self.num_frames and self.duration_s:
            return self.num_frames / self.duration_s
        return None


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        header = 8
        if size == 1 and offset + 16 <= end:
            (size,) = struct.unpack(">Q", data[offset + 8:offset + 16])
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            return
        yield kind, offset + header, offset + size
        offset += size


def _find(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> Iterator[tuple[int, int]]:
    for kind, body, stop in _boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                yield body, stop
            elif kind in _CONTAINERS:
                yield from _find(data, body, stop, path[1:])


def _scale_and_duration(data: bytes, body: int) -> tuple[int, int]:
    """(time scale, duration) of an ``mvhd`` or ``mdhd`` payload, version 0 or 1."""
    if data[body] == 1:
        scale, duration = struct.unpack(">IQ", data[body + 20:body + 32])
    else:
        scale, duration = struct.unpack(">II", data[body + 12:body + 20])
    return scale, duration


def mp4_info(data: bytes) -> VideoInfo:
    """The video track's facts, as far as the file tells them."""
    try:
        for trak, trak_end in _find(data, 0, len(data), (b"moov", b"trak")):
            tkhd = next(_find(data, trak, trak_end, (b"tkhd",)), None)
            if tkhd is None or tkhd[1] - tkhd[0] < 84:
                continue
            width, height = struct.unpack(">II", data[tkhd[1] - 8:tkhd[1]])
            if not width or not height:
                continue  # an audio track
            info = {"width": width >> 16, "height": height >> 16}
            mdhd = next(_find(data, trak, trak_end, (b"mdia", b"mdhd")), None)
            if mdhd is not None:
                scale, duration = _scale_and_duration(data, mdhd[0])
                info["duration_s"] = duration / scale if scale else None
            stsz = next(_find(data, trak, trak_end, (b"mdia", b"minf", b"stbl", b"stsz")), None)
            if stsz is not None:
                (info["num_frames"],) = struct.unpack(">I", data[stsz[0] + 8:stsz[0] + 12])
            return VideoInfo(**info)  # type: ignore[arg-type]
    except (struct.error, IndexError, ValueError):
        pass
    return VideoInfo()
