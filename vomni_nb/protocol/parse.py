"""Parse every success body into result objects; malformed bodies raise ResponseFormatError.

Never a KeyError or IndexError: every lookup goes through :func:`field`, which names what was
missing; numbers and names a result keeps are checked for their type (:func:`_number`), so a hostile
body cannot plant a dict where a display expects an int. Each public parser sits behind
:func:`~vomni_nb.protocol.untrusted.reads_untrusted` (only our errors escape). Each parser takes the request's :class:`~vomni_nb.provenance.Provenance` (what was asked,
of whom, and when) and hands it to the results it builds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any

from vomni_nb.errors import ResponseFormatError
from vomni_nb.protocol.dataurl import decode_base64, decode_data_url
from vomni_nb.protocol.limits import DEFAULT_LIMITS, format_size
from vomni_nb.protocol.mp4 import mp4_info
from vomni_nb.protocol.status import error_from_response
from vomni_nb.protocol.untrusted import load_json, reads_untrusted
from vomni_nb.protocol.wav import parse_wav
from vomni_nb.provenance import Provenance
from vomni_nb.results import ChatResult, ImageResult, SpeechResult, VideoResult

__all__ = [
    "answered_by",
    "load_json",
    "field",
    "image_info",
    "parse_images_json",
    "parse_images_file",
    "parse_chat_json",
    "chat_images",
    "parse_speech",
    "parse_video_job",
    "video_result",
    "parse_models",
    "DEFAULT_PCM_RATE",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_PCM_RATE = 24000  # Qwen3-TTS / Qwen-Omni native rate; raw PCM carries no header


def answered_by(provenance: Provenance, model: Any) -> Provenance:
    """``provenance`` with the model the answer names (the server knows best what it runs), if it names one."""
    if isinstance(model, str) and model and model != provenance.model:
        return dataclasses.replace(provenance, model=model)
    return provenance


def field(obj: Any, *path: str | int, what: str = "response") -> Any:
    """``obj[path0][path1]...`` or ResponseFormatError naming the missing piece."""
    current = obj
    for key in path:
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError) as exc:
            where = "".join(f"[{k!r}]" for k in path)
            raise ResponseFormatError(f"The {what} has no {where} (got {str(obj)[:120]}...).") from exc
    return current


def _number(value: Any) -> float | None:
    """A number a result keeps (fps, a duration), or None: a hostile body may put anything there."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return value


def _whole(value: Any) -> int | None:
    """A count a result keeps (frames, a sample rate), or None when it is not a whole, positive-or-zero number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _embedded_error(body: Any, url: str | None = None) -> None:
    """A 200 answer whose body is an error object (e.g. chat on a TTS-only server) raises, worded like any
    other error answer (``400 Bad Request from URL: ...``)."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping) and "choices" not in body:
        error = body["error"]
        code = error.get("code") if isinstance(error.get("code"), int) and 400 <= error["code"] < 600 else 400
        raise error_from_response(code, json.dumps(body).encode(), {}, url=url, path=url or "the server")


def _check_pixels(width: int, height: int) -> None:
    """Refuse an image whose header claims more pixels than Pillow decodes safely (a decompression bomb)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise ResponseFormatError(
            f"The server sent an image claiming {width}x{height} pixels, more than Pillow decodes safely "
            f"({limit:,}): refused as a decompression bomb. If you trust this server, raise "
            "PIL.Image.MAX_IMAGE_PIXELS.")


def image_info(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of an encoded image; reads only the header. A decompression bomb (a header
    claiming more pixels than Pillow's ``MAX_IMAGE_PIXELS``) raises ResponseFormatError."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        # PNG is the common case; reading IHDR directly skips Pillow's per-image setup.
        width, height = struct.unpack(">II", data[16:24])
        if width and height:
            _check_pixels(width, height)
            return "png", width, height
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; both are bombs to us.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = (image.format or "").lower()
                width, height = image.width, image.height
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ResponseFormatError(f"The server sent an image that is a decompression bomb ({exc}).") from exc
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many kinds on hostile headers
        raise ResponseFormatError(f"The server sent image data that cannot be read ({type(exc).__name__}: "
                                  f"{str(exc)[:160]}).") from exc
    _check_pixels(width, height)
    return ("jpeg" if fmt == "jpg" else fmt), width, height


def _image(data: bytes, provenance: Provenance, index: int, metrics: Mapping[str, Any] | None) -> ImageResult:
    fmt, width, height = image_info(data)
    return ImageResult(data=data, format=fmt, width=width, height=height, provenance=provenance,
                       metrics=dict(metrics or {}), index=index)


@reads_untrusted("an image response")
def parse_images_json(content: bytes, provenance: Provenance) -> list[ImageResult]:
    """``ImageGenerationResponse``: ``data[i].b64_json`` plus ``metrics``."""
    body = load_json(content, "image response")
    _embedded_error(body, provenance.server_url)
    items = field(body, "data", what="image response")
    if not isinstance(items, list) or not items:
        raise ResponseFormatError("The image response has no images in 'data'.")
    metrics = body.get("metrics") if isinstance(body.get("metrics"), Mapping) else {}
    return [
        _image(decode_base64(field(item, "b64_json", what="image item"), "an image"), provenance, i, metrics)
        for i, item in enumerate(items)
    ]


@reads_untrusted("an image file")
def parse_images_file(content: bytes, content_type: str, provenance: Provenance, *,
                      max_bytes: int = DEFAULT_LIMITS.max_decoded_bytes) -> list[ImageResult]:
    """``response_format: "file"``: one raw image, or a ZIP of ``image_<i>.<ext>`` members (which
    together may expand to at most ``max_bytes``: a ZIP is compressed, so it can be a bomb)."""
    if content_type.startswith("application/zip") or content.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                members = sorted(archive.infolist(), key=lambda member: member.filename)
                # A member cannot expand past its declared size (zipfile stops there and checks the CRC).
                if sum(member.file_size for member in members) > max_bytes:
                    raise ResponseFormatError(f"The server sent a ZIP of images that expands past "
                                              f"{format_size(max_bytes)}: refused.")
                blobs = [archive.read(member) for member in members]
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ResponseFormatError(f"The server sent a broken ZIP of images ({exc}).") from exc
        return [_image(blob, provenance, i, None) for i, blob in enumerate(blobs)]
    return [_image(content, provenance, 0, None)]


@reads_untrusted("chat images")
def chat_images(content: Any, provenance: Provenance) -> list[ImageResult]:
    """Images from a chat content list (``image_url`` items with PNG data URLs)."""
    images: list[ImageResult] = []
    for item in content if isinstance(content, list) else []:
        if isinstance(item, Mapping) and item.get("type") == "image_url":
            _, data = decode_data_url(field(item, "image_url", "url", what="image content item"))
            metrics = {k: item[k] for k in ("stage_durations", "peak_memory_mb") if k in item}
            images.append(_image(data, provenance, len(images), metrics))
    return images


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(i.get("text", "")) for i in content if isinstance(i, Mapping) and i.get("type") == "text")
    return ""


@reads_untrusted("a chat response")
def parse_chat_json(content: bytes, provenance: Provenance) -> ChatResult:
    """A ``chat.completion``: string or list content, merged text+audio choice, ``audio_metadata``."""
    body = load_json(content, "chat response")
    _embedded_error(body, provenance.server_url)
    choice = field(body, "choices", 0, what="chat response")
    message = field(choice, "message", what="chat choice")
    if not isinstance(message, Mapping):
        raise ResponseFormatError("The chat choice's message is not an object.")
    text = _content_text(message.get("content"))
    audio_bytes = audio_format = sample_rate = frames = None
    audio = message.get("audio")
    if isinstance(audio, Mapping) and audio.get("data"):
        audio_bytes = decode_base64(audio["data"], "chat audio")
        meta = choice.get("audio_metadata") if isinstance(choice.get("audio_metadata"), Mapping) else {}
        audio_format = str(meta.get("format") or provenance.params.get("audio", {}).get("format") or "wav")
        sample_rate = _whole(meta.get("sample_rate_hz"))
        frames = _whole(meta.get("frame_count"))
        if audio_format == "wav":
            info = parse_wav(audio_bytes)
            sample_rate, frames = info.sample_rate, info.frames
        if not text and isinstance(audio.get("transcript"), str):
            text = audio["transcript"]
    metrics = body.get("metrics") if isinstance(body.get("metrics"), Mapping) else {}
    usage = body.get("usage") if isinstance(body.get("usage"), Mapping) else {}
    return ChatResult(
        text=text,
        audio=audio_bytes,
        audio_format=audio_format,
        sample_rate=sample_rate,
        audio_frames=frames,
        images=tuple(chat_images(message.get("content"), provenance)),
        finish_reason=_text_or_none(choice.get("finish_reason")),
        id=_text_or_none(body.get("id")),
        provenance=answered_by(provenance, body.get("model")),
        usage=dict(usage),
        metrics=dict(metrics),
    )


def _usage_headers(headers: Mapping[str, str]) -> dict[str, int]:
    usage = {}
    for name in ("input-tokens", "output-tokens", "total-tokens", "input-text-tokens", "input-audio-tokens"):
        value = headers.get(f"x-vllm-omni-{name}")
        if value is not None and value.strip().isdigit():
            usage[name.replace("-", "_")] = int(value)
    return usage


@reads_untrusted("a speech response")
def parse_speech(content: bytes, headers: Mapping[str, str], provenance: Provenance, response_format: str) -> SpeechResult:
    """A whole speech file: decode WAV headers (raw PCM uses the requested or native rate)."""
    if not content:
        raise ResponseFormatError("The server sent an empty speech body.")
    if content[:1] == b"{":
        _embedded_error(load_json(content, "speech response"), provenance.server_url)
    sample_rate = channels = frames = None
    if response_format == "wav":
        info = parse_wav(content)
        sample_rate, channels, frames = info.sample_rate, info.channels, info.frames
    elif response_format == "pcm":
        sample_rate = int(provenance.params.get("sample_rate") or DEFAULT_PCM_RATE)
        channels, frames = 1, len(content) // 2
    return SpeechResult(
        audio=content,
        format=response_format,
        sample_rate=sample_rate,
        channels=channels,
        frames=frames,
        provenance=provenance,
        usage=_usage_headers(headers),
    )


@reads_untrusted("a video job")
def parse_video_job(content: bytes) -> dict[str, Any]:
    """A video job record; must have an ``id`` and a ``status``."""
    job = load_json(content, "video job")
    _embedded_error(job)
    if not isinstance(job, dict) or not isinstance(job.get("id"), str) or not isinstance(job.get("status"), str):
        raise ResponseFormatError(f"The video job has no id/status: {str(job)[:120]}.")
    return job


@reads_untrusted("a video")
def video_result(data: bytes, job: Mapping[str, Any], provenance: Provenance) -> VideoResult:
    """A downloaded video: its size, frames and duration read from the MP4 itself, the job's record where
    the file says nothing (the job echoes what was asked, the file holds what was made)."""
    width = height = None
    size = job.get("size") or provenance.params.get("size")
    if isinstance(size, str) and "x" in size:
        left, _, right = size.partition("x")
        if left.isascii() and left.isdigit() and right.isascii() and right.isdigit():
            width, height = int(left), int(right)
    info = mp4_info(data)
    metrics: Mapping[str, Any] = job["metrics"] if isinstance(job.get("metrics"), Mapping) else {}
    return VideoResult(
        data=data,
        id=str(job.get("id")),
        width=info.width or width,
        height=info.height or height,
        fps=_number(job.get("fps")) or info.fps,
        num_frames=info.num_frames or _whole(job.get("num_frames")),
        duration_s=info.duration_s if info.duration_s is not None else _number(job.get("duration_s")),
        provenance=answered_by(provenance, job.get("model")),
        metrics=dict(metrics),
        job=dict(job),
    )


@reads_untrusted("a model list")
def parse_models(content: bytes) -> list[str]:
    body = load_json(content, "model list")
    data = field(body, "data", what="model list")
    if not isinstance(data, list):
        raise ResponseFormatError("The model list's 'data' is not a list.")
    return [str(field(item, "id", what="model entry")) for item in data]
