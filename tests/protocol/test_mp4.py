"""Reading an MP4's own geometry: width, height, frames and duration (issue 7 item 18)."""

from __future__ import annotations

import io

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
