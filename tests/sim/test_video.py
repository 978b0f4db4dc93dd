"""video.py: real H.264 MP4s with the exact frame count, rate and size asked for."""

from __future__ import annotations

import io
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from vomni_nb.sim import video


def decode(data: bytes) -> tuple[list[np.ndarray], Fraction, str]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return frames, Fraction(stream.average_rate), stream.codec_context.pix_fmt


@pytest.mark.parametrize(("width", "height", "frames", "fps"), [(64, 48, 5, 16.0), (320, 240, 30, 24.0), (96, 64, 7, 23.976)])
def test_clip_has_exactly_the_requested_shape(width: int, height: int, frames: int, fps: float) -> None:
    data = video.render_video("a kite over a beach", seed=1, width=width, height=height, num_frames=frames, fps=fps)
    decoded, rate, pix_fmt = decode(data)
    assert len(decoded) == frames
    assert decoded[0].shape == (height, width, 3)
    assert float(rate) == pytest.approx(fps, rel=1e-3)
    assert pix_fmt == "yuv420p"
    assert data[4:8] == b"ftyp"


def test_frames_move() -> None:
    decoded, _, _ = decode(video.render_video("motion", seed=2, width=128, height=96, num_frames=12, fps=12))
    first, last = decoded[0].astype(int), decoded[-1].astype(int)
    assert np.abs(first[30:] - last[30:]).mean() > 2.0  # below the caption bar the picture pans


def test_deterministic_and_seed_dependent() -> None:
    args = {"width": 64, "height": 64, "num_frames": 4, "fps": 8.0}
    one = video.render_video("same", seed=1, **args)  # type: ignore[arg-type]
    assert one == video.render_video("same", seed=1, **args)  # type: ignore[arg-type]
    assert decode(one)[0][0].tolist() != decode(video.render_video("same", seed=2, **args))[0][0].tolist()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 65, "height": 64, "num_frames": 2, "fps": 8.0}, "even"),
        ({"width": 64, "height": 64, "num_frames": 0, "fps": 8.0}, "num_frames"),
        ({"width": 64, "height": 64, "num_frames": 2, "fps": 0.0}, "fps"),
    ],
)
def test_impossible_clips_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        video.render_video("x", seed=1, **kwargs)  # type: ignore[arg-type]


def test_a_set_cancel_event_stops_the_render() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(video.Cancelled):
        video.render_video("x", seed=1, width=64, height=64, num_frames=50, fps=8.0, cancel=cancel)
