"""Real MP4 clips without a model: a textured picture panned over time, with prompt, seed and frame number.

H.264 in yuv420p (what browsers and notebooks play), exactly ``num_frames`` frames at ``fps``. One
still is rendered larger than the frame and cropped along a seed-chosen path, so a clip costs little
more than its encoding.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
from PIL import Image, ImageDraw

from vomni_nb.sim import media

__all__ = ["render_video", "video_frames", "Cancelled", "MAX_FRAMES"]

MAX_FRAMES = 2000
PAN = 1.25  # the still is this much larger than a frame, leaving room to move


class Cancelled(Exception):
    """The caller set the cancel event: rendering stopped between frames."""


def _fps_fraction(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


def video_frames(
    prompt: str,
    *,
    seed: int,
    width: int,
    height: int,
    num_frames: int,
    negative_prompt: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    picture: Image.Image | None = None,
) -> Iterator[Image.Image]:
    """The clip's frames: a pan across one still (drawn, or restyled from ``picture``), captioned per frame."""
    still_size = {"width": math.ceil(width * PAN), "height": math.ceil(height * PAN)}
    if picture is not None:  # image-to-video: the clip visibly starts from the caller's picture
        still = media.edit_image(picture, prompt, seed=seed, **still_size)
    else:
        still = media.render_image(
            prompt, seed=seed, negative_prompt=negative_prompt, steps=steps, guidance=guidance, **still_size
        )
    rng = np.random.default_rng(media.seed_from("video", prompt, seed))
    start = rng.random(2)
    end = rng.random(2)
    room_x, room_y = still.width - width, still.height - height
    font = media._font(max(8, min(22, width // 36)))
    label = prompt if len(prompt) <= 60 else prompt[:59] + "…"
    for index in range(num_frames):
        t = index / max(1, num_frames - 1)
        x = round((start[0] + (end[0] - start[0]) * t) * room_x)
        y = round((start[1] + (end[1] - start[1]) * t) * room_y)
        frame = still.crop((x, y, x + width, y + height))
        draw = ImageDraw.Draw(frame)
        draw.rectangle((0, 0, width, font.size + 8 if hasattr(font, "size") else 20), fill=(0, 0, 0))
        draw.text((4, 3), f"{label} · seed {seed} · frame {index + 1}/{num_frames}", font=font, fill=(255, 255, 255))
        yield frame


def render_video(
    prompt: str,
    *,
    seed: int,
    width: int,
    height: int,
    num_frames: int,
    fps: float,
    negative_prompt: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    cancel: threading.Event | None = None,
    picture: Image.Image | None = None,
) -> bytes:
    """An MP4 (H.264, yuv420p) of exactly ``num_frames`` frames at ``fps``.

    ``cancel`` lets a cancelled job stop a render running in a worker thread (raises Cancelled).
    """
    import av  # heavy; only video needs it

    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"video size must be positive and even for yuv420p, got {width}x{height}")
    if not 1 <= num_frames <= MAX_FRAMES:
        raise ValueError(f"num_frames must be between 1 and {MAX_FRAMES}, got {num_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    rate = _fps_fraction(fps)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=rate)  # type: ignore[call-overload]
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        frames = video_frames(
            prompt, seed=seed, width=width, height=height, num_frames=num_frames,
            negative_prompt=negative_prompt, steps=steps, guidance=guidance, picture=picture,
        )
        for frame in frames:
            if cancel is not None and cancel.is_set():
                raise Cancelled
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()
