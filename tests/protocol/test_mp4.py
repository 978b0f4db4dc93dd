"""Reading an MP4's own geometry: width, height, frames and duration (issue 7 item 18)."""

from __future__ import annotations

import io
import struct

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vomni_nb.protocol.mp4 import VideoInfo, mp4_info
from vomni_nb.sim.video import render_video


@pytest.mark.parametrize(("width", "height", "frames", "fps"), [(64, 48, 9, 8.0), (96, 32, 17, 16.0)])
def test_the_file_s_own_facts(width: int, height: int, frames: int, fps: float) -> None:
    data = render_video("a boat", seed=1, width=width, height=height, num_frames=frames, fps=fps)
    info = mp4_info(data)
    assert (info.width, info.height, info.num_frames) == (width, height, frames)
    assert info.duration_s == pytest.approx(frames / fps) and info.fps == pytest.approx(fps)
    with av.open(io.BytesIO(data)) as container:  # PyAV agrees (an independent reader)
        stream = container.streams.video[0]
        assert (stream.width, stream.height, stream.frames) == (width, height, frames)


@given(st.binary(max_size=400))
def test_anything_unreadable_is_none(data: bytes) -> None:
    info = mp4_info(data)
    assert isinstance(info, VideoInfo)


def test_a_cut_file_gives_nothing_rather_than_raising() -> None:
    data = render_video("a boat", seed=1, width=64, height=48, num_frames=9, fps=8.0)
    for cut in (8, 40, len(data) // 2):
        assert isinstance(mp4_info(data[:cut]), VideoInfo)


def _box(kind: bytes, *payload: bytes, wide: bool = False) -> bytes:
    body = b"".join(payload)
    if wide:  # the 64-bit form: size 1, then the real size after the type
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _track(width: int, height: int, *, mdhd: bytes | None, frames: int | None) -> bytes:
    tkhd = _box(b"tkhd", b"\0" * 76 + struct.pack(">II", width << 16, height << 16))
    stbl = [_box(b"stbl", _box(b"stsz", struct.pack(">III", 0, 0, frames)))] if frames is not None else []
    media = [_box(b"mdhd", mdhd)] if mdhd is not None else []
    return _box(b"trak", tkhd, _box(b"mdia", *media, _box(b"minf", *stbl)))


def test_box_forms_and_tracks_the_files_of_other_writers_use() -> None:
    # Other encoders than ours: 64-bit box sizes, a last box sized 0 ("to the end of the file"), a version 1
    # mdhd (64-bit times), an audio track (no size) before the video one.
    mdhd_v1 = struct.pack(">B3xQQIQ", 1, 0, 0, 1000, 2500)
    audio = _track(0, 0, mdhd=struct.pack(">B3xIIII", 0, 0, 0, 48000, 48000), frames=47)
    video = _track(320, 240, mdhd=mdhd_v1, frames=60)
    last = struct.pack(">I4s", 0, b"trak") + video[8:]  # the last box, sized 0: "to the end of the file"
    info = mp4_info(_box(b"ftyp", b"isom") + _box(b"moov", audio, last, wide=True))
    assert (info.width, info.height, info.num_frames, info.duration_s) == (320, 240, 60, 2.5)
    assert info.fps == 24.0


def test_a_track_that_says_less_gives_what_it_says() -> None:
    bare = mp4_info(_box(b"moov", _track(64, 48, mdhd=None, frames=None)))
    assert (bare.width, bare.height, bare.num_frames, bare.duration_s, bare.fps) == (64, 48, None, None, None)
    no_scale = mp4_info(_box(b"moov", _track(64, 48, mdhd=struct.pack(">B3xIIII", 0, 0, 0, 0, 9), frames=3)))
    assert no_scale.duration_s is None and no_scale.num_frames == 3 and no_scale.fps is None
    # A short tkhd is no track header; a stsz cut before its count reads as nothing at all.
    assert mp4_info(_box(b"moov", _box(b"trak", _box(b"tkhd", b"\0" * 20)))) == VideoInfo()
    cut = _box(b"moov", _box(b"trak", _box(b"tkhd", b"\0" * 76 + struct.pack(">II", 64 << 16, 48 << 16)),
                             _box(b"mdia", _box(b"minf", _box(b"stbl", _box(b"stsz", b"\0" * 4))))))
    assert mp4_info(cut) == VideoInfo()
