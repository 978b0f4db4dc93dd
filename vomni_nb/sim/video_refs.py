"""The picture an image-to-video request starts from: ``input_reference`` or ``image_reference``.

As vLLM-Omni 0.30.0's ``decode_input_reference`` reads them: an upload is an image, else a video (then
there is no start picture), else a 400; an ``image_reference`` URL must be a ``data:image`` URL or
http(s). The simulator fetches nothing, so an http(s) reference gives no picture (a text-to-video
clip) instead of a download.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from fastapi import HTTPException, UploadFile
from PIL import Image, UnidentifiedImageError

__all__ = ["start_picture"]


def _image(data: bytes) -> Image.Image | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def _is_video(data: bytes) -> bool:
    import av  # heavy; only a non-image upload needs it

    try:
        with av.open(io.BytesIO(data)) as container:
            return bool(container.streams.video) and next(container.decode(video=0), None) is not None
    except (av.FFmpegError, OSError, ValueError, StopIteration):
        return False


def _from_url(url: Any) -> Image.Image | None:
    if not isinstance(url, str):
        return None
    if url.startswith("data:image"):
        payload = url.split(",", 1)[1] if "," in url else ""
        if not payload:
            raise HTTPException(400, "Invalid image_reference.image_url: image data is empty.")
        try:
            data = base64.b64decode(payload)
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(400, "Invalid image_reference.image_url: image data is not valid base64.") from exc
        image = _image(data)
        if image is None:
            raise HTTPException(400, "Invalid image_reference.image_url: provided content is not a valid image.")
        return image
    if url.startswith(("http://", "https://")):
        return None
    raise HTTPException(400, "Invalid image_reference.image_url: must be an http(s) URL or data URL.")


async def start_picture(input_reference: UploadFile | None, image_reference: Any) -> Image.Image | None:
    """The first image reference of a request, decoded; None for text-to-video (or a video reference)."""
    if input_reference is not None:
        data = await input_reference.read()
        image = _image(data)
        if image is not None:
            return image
        if _is_video(data):
            return None
        raise HTTPException(400, "Invalid input_reference: provided content is not a valid image or video.")
    references = image_reference if isinstance(image_reference, list) else [image_reference]
    for reference in references:
        if isinstance(reference, dict):
            picture = _from_url(reference.get("image_url"))
            if picture is not None:
                return picture
    return None
