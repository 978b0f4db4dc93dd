"""The Wan2.x pipelines' geometry: the clip a video request really gets (issue 13 items 2-3).

Read from vLLM-Omni 0.30.0's ``diffusion/models/wan2_2/pipeline_wan2_2*.py``; the video family of the
simulator stands for these pipelines.

Rule 1: the VAE compresses time 4:1 after a first frame, so a frame count that is not 4k+1 becomes
``n // 4 * 4 + 1`` (8 -> 9, 16 -> 17, 3 -> 1).
Rule 2: width and height are floored to a multiple of the VAE's spatial factor times the patch size:
32 for TI2V-5B (16 x 2), 16 for the A14B models (8 x 2).
Rule 3: with nothing set a clip is 832x480 and 81 frames. Image-to-video without a size takes the input
image's aspect ratio at a 1280x720 area, each side floored to 16 (then rule 2); the frame default is the same.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["Geometry", "geometry", "frame_count", "size_multiple", "image_to_video_size", "DEFAULT_SIZE",
           "DEFAULT_FRAMES"]

DEFAULT_SIZE = (832, 480)  # width, height
DEFAULT_FRAMES = 81
TEMPORAL_FACTOR = 4
I2V_AREA = 1280 * 720
I2V_MULTIPLE = 16


@dataclasses.dataclass(frozen=True)
class Geometry:
    width: int
    height: int
    frames: int


def frame_count(requested: int) -> int:
    """Rule 1."""
    if requested % TEMPORAL_FACTOR != 1:
        requested = requested // TEMPORAL_FACTOR * TEMPORAL_FACTOR + 1
    return max(requested, 1)


def size_multiple(model: str) -> int:
    """Rule 2's multiple for a model id."""
    return 32 if "ti2v" in model.lower() else 16


def image_to_video_size(image_width: int, image_height: int) -> tuple[int, int]:
    """Rule 3's size for an input image: its aspect ratio at the 720p area."""
    aspect = image_height / image_width
    height = round(math.sqrt(I2V_AREA * aspect)) // I2V_MULTIPLE * I2V_MULTIPLE
    width = round(math.sqrt(I2V_AREA / aspect)) // I2V_MULTIPLE * I2V_MULTIPLE
    return width, height


def geometry(
    model: str,
    width: int | None,
    height: int | None,
    frames: int | None,
    image_size: tuple[int, int] | None = None,
) -> Geometry:
    """What the pipeline renders for a request's (possibly unset) width, height and frame count."""
    if image_size is not None and (width is None or height is None):
        from_image = image_to_video_size(*image_size)
        width, height = width or from_image[0], height or from_image[1]
    multiple = size_multiple(model)
    width = (width or DEFAULT_SIZE[0]) // multiple * multiple
    height = (height or DEFAULT_SIZE[1]) // multiple * multiple
    return Geometry(width, height, frame_count(frames or DEFAULT_FRAMES))
