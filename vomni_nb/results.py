"""What a generation gives back: frozen, self-displaying result objects with their provenance.

Each result holds the output bytes, what we decoded from them (size, format, sample rate, ...), the
request parameters, the seed actually used, timings, server metrics, the model and the server URL.
``_repr_mimebundle_`` gives static outputs (they survive saving and nbconvert) with the provenance in
the output metadata under ``"vomni_nb"``. Nothing here touches the network or imports IPython.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import json
import os
import struct
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Union

__all__ = [
    "ImageResult",
    "ImageBatch",
    "SpeechResult",
    "ChatResult",
    "VideoResult",
    "save_new",
    "png_with_text",
    "a1111_parameters",
]

PathLike = Union[str, "os.PathLike[str]"]
MimeBundle = tuple[dict[str, Any], dict[str, Any]]

_AUDIO_MIME = {"wav": "audio/wav", "pcm": "audio/L16", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg"}
_IMAGE_EXT = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


def save_new(data: bytes, target: PathLike, default_name: str) -> Path:
    """Write ``data`` to ``target`` (a file path, or a directory to put ``default_name`` in), never overwriting.

    A new path without a suffix (``save("out")``) is a directory: a file named ``out`` with no
    extension is never what was meant. When the name is taken, ``-1``, ``-2``, ... is added before
    the suffix. Returns the path written.
    """
    path = Path(target).expanduser()
    if path.is_dir() or str(target).endswith(("/", os.sep)) or (not path.suffix and not path.exists()):
        path = path / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    stem, suffix = path.stem, path.suffix
    candidate, counter = path, 0
    while True:
        try:
            # O_EXCL makes "pick a free name" safe against a second writer doing the same.
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            counter += 1
            candidate = path.with_name(f"{stem}-{counter}{suffix}")
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return candidate


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk_names(data: bytes) -> list[bytes]:
    names, offset = [], len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        chunk = data[offset + 4 : offset + 8]
        if chunk in (b"tEXt", b"iTXt"):
            names.append(data[offset + 8 : offset + 8 + length].split(b"\0", 1)[0])
        offset += 12 + length
    return names


def png_with_text(data: bytes, texts: Mapping[str, str]) -> bytes:
    """``data`` with UTF-8 iTXt chunks added before IEND (keys the file already has are left alone)."""
    if not data.startswith(_PNG_SIGNATURE) or data[-12:-8] != b"\0\0\0\0" or data[-8:-4] != b"IEND":
        return data
    present = set(_png_chunk_names(data))
    chunks = b""
    for key, text in texts.items():
        keyword = key.encode("latin-1")
        if keyword in present:
            continue
        body = keyword + b"\0\0\0\0\0" + text.encode("utf-8")  # no compression, no language tags
        chunks += struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    return data[:-12] + chunks + data[-12:]


def a1111_parameters(image: ImageResult) -> str:
    """The ``parameters`` text other image tools write and read: prompt, negative prompt, ``Key: value`` pairs."""
    params = image.params
    lines = [image.prompt]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {params['negative_prompt']}")
    pairs = {
        "Steps": params.get("num_inference_steps"),
        "CFG scale": params.get("guidance_scale"),
        "Seed": image.seed,
        "Size": image.size,
        "Model": image.model,
    }
    lines.append(", ".join(f"{key}: {value}" for key, value in pairs.items() if value is not None))
    return "\n".join(lines)


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:10]


def _duration_s(frames: int | None, sample_rate: int | None) -> float | None:
    """Seconds of audio, when both counts are known."""
    if frames is None or not sample_rate:
        return None
    return frames / sample_rate


def _provenance(kind: str, result: Any, **extra: Any) -> dict[str, Any]:
    record = {
        "kind": kind,
        "model": result.model,
        "server": result.server_url,
        "params": dict(result.params),
        "seed": getattr(result, "seed", None),
        "timings": dict(result.timings),
        "metrics": dict(getattr(result, "metrics", {}) or {}),
    }
    record.update(extra)
    return {"vomni_nb": record}


@dataclasses.dataclass(frozen=True, repr=False)
class ImageResult:
    """One generated image: ``data`` is the encoded file (``format`` png, jpeg or webp)."""

    data: bytes
    format: str
    width: int
    height: int
    prompt: str = ""
    seed: int | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model: str | None = None
    server_url: str | None = None
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    index: int = 0

    @property
    def mime_type(self) -> str:
        return f"image/{self.format}"

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def __repr__(self) -> str:
        return (
            f"ImageResult({self.size} {self.format}, {len(self.data)} bytes, seed={self.seed}, "
            f"model={self.model!r}, prompt={_short(self.prompt)!r})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        data: dict[str, Any] = {"text/plain": repr(self)}
        metadata = _provenance("image", self, size=self.size, format=self.format)
        if self.format in ("png", "jpeg"):
            data[self.mime_type] = base64.b64encode(self.data).decode("ascii")
            metadata[self.mime_type] = {"width": self.width, "height": self.height}
        else:
            # Notebook front ends render only png/jpeg as image outputs; webp goes through HTML.
            data["text/html"] = f'<img src="{_data_url(self.mime_type, self.data)}" alt="{html.escape(self.prompt)}"/>'
        return data, metadata

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the image file (never overwriting); returns the path.

        PNG files carry their recipe: a ``parameters`` text chunk as other image tools write it, and a
        ``vomni_nb`` chunk with the JSON provenance, so any saved file can be rerun.
        """
        name = f"image-{self.seed if self.seed is not None else _digest(self.data)}{_IMAGE_EXT.get(self.format, '.img')}"
        data = self.data
        if self.format == "png":
            recipe = json.dumps(_provenance("image", self)["vomni_nb"], default=str, sort_keys=True)
            data = png_with_text(data, {"parameters": a1111_parameters(self), "vomni_nb": recipe})
        return save_new(data, path_or_dir, name)

    def to_pil(self) -> Any:
        """The image as a ``PIL.Image.Image``."""
        import io

        from PIL import Image

        return Image.open(io.BytesIO(self.data))


PREVIEW_SIDE = 256  # px: a grid cell's longest side in the notebook


def _preview(image: ImageResult) -> tuple[str, bytes]:
    """(mime, bytes) of a small JPEG for a grid cell; the image itself when it is already small."""
    if max(image.width, image.height) <= PREVIEW_SIDE:
        return image.mime_type, image.data
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(image.data)) as picture:
            picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            buffer = io.BytesIO()
            picture.convert("RGB").save(buffer, "JPEG", quality=85)
    except (OSError, ValueError):
        return image.mime_type, image.data
    return "image/jpeg", buffer.getvalue()


@dataclasses.dataclass(frozen=True, repr=False)
class ImageBatch:
    """Several images from one request (``n`` > 1) or a sweep; indexable like a tuple."""

    images: tuple[ImageResult, ...]
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageResult]:
        return iter(self.images)

    def __getitem__(self, index: int) -> ImageResult:
        return self.images[index]

    def __repr__(self) -> str:
        seeds = [image.seed for image in self.images]
        return f"ImageBatch({len(self.images)} images, seeds={seeds})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        # Previews, not the full files: four 1024x1024 PNGs would put ~9 MB into the saved notebook.
        cells = "".join(
            f'<figure style="display:inline-block;margin:4px"><img src="{_data_url(*_preview(image))}"'
            f' style="max-width:{PREVIEW_SIDE}px"/><figcaption>seed {image.seed}</figcaption></figure>'
            for image in self.images
        )
        metadata = {"vomni_nb": {"kind": "image_batch", "items": [_provenance("image", i)["vomni_nb"] for i in self.images]}}
        return {"text/plain": repr(self), "text/html": f"<div>{cells}</div>"}, metadata

    def save(self, directory: PathLike = ".") -> list[Path]:
        """Save every image into ``directory``; returns the paths."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        return [image.save(Path(directory)) for image in self.images]


@dataclasses.dataclass(frozen=True, repr=False)
class SpeechResult:
    """Generated speech: ``audio`` is a complete file in ``format`` (pcm results are wrapped as WAV)."""

    audio: bytes
    format: str
    sample_rate: int | None
    channels: int | None = None
    frames: int | None = None
    text: str = ""
    voice: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model: str | None = None
    server_url: str | None = None
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    usage: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        return _duration_s(self.frames, self.sample_rate)

    @property
    def mime_type(self) -> str:
        return _AUDIO_MIME.get(self.format, "application/octet-stream")

    def __repr__(self) -> str:
        duration = f"{self.duration_s:.2f}s" if self.duration_s is not None else "?s"
        rate = f"{self.sample_rate} Hz" if self.sample_rate else f"{len(self.audio)} bytes"  # mp3 etc.: not decoded
        return (
            f"SpeechResult({self.format}, {duration}, {rate}, voice={self.voice!r}, "
            f"model={self.model!r}, text={_short(self.text)!r})"
        )

    def playable(self) -> tuple[str, bytes]:
        """(mime type, bytes) a browser can play: raw PCM is wrapped in a WAV header."""
        if self.format == "pcm":
            from vomni_nb.protocol.wav import pcm_to_wav

            return "audio/wav", pcm_to_wav(self.audio, self.sample_rate or 24000, self.channels or 1)
        return self.mime_type, self.audio

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        player = f'<audio controls src="{_data_url(*self.playable())}"></audio>'
        metadata = _provenance("speech", self, format=self.format, sample_rate=self.sample_rate, duration_s=self.duration_s)
        return {"text/plain": repr(self), "text/html": player}, metadata

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the audio file (never overwriting); returns the path."""
        return save_new(self.audio, path_or_dir, f"speech-{_digest(self.audio)}.{self.format}")


@dataclasses.dataclass(frozen=True, repr=False)
class ChatResult:
    """A chat answer: text, optional audio (a WAV/... file) and images, with usage and provenance."""

    text: str
    audio: bytes | None = None
    audio_format: str | None = None
    sample_rate: int | None = None
    audio_frames: int | None = None
    images: tuple[ImageResult, ...] = ()
    finish_reason: str | None = None
    id: str | None = None
    usage: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model: str | None = None
    server_url: str | None = None
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def audio_duration_s(self) -> float | None:
        return _duration_s(self.audio_frames, self.sample_rate)

    def __repr__(self) -> str:
        parts = [repr(_short(self.text, 80))]
        if self.audio is not None:
            parts.append(f"audio={self.audio_format} {len(self.audio)} bytes")
        if self.images:
            parts.append(f"images={len(self.images)}")
        return f"ChatResult({', '.join(parts)}, model={self.model!r})"

    def __str__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        data: dict[str, Any] = {"text/plain": self.text or repr(self), "text/markdown": self.text}
        if self.audio is not None or self.images:
            pieces = [f"<div>{html.escape(self.text)}</div>"] if self.text else []
            if self.audio is not None:
                mime = _AUDIO_MIME.get(self.audio_format or "wav", "audio/wav")
                pieces.append(f'<audio controls src="{_data_url(mime, self.audio)}"></audio>')
            pieces += [f'<img src="{_data_url(i.mime_type, i.data)}" style="max-width:512px"/>' for i in self.images]
            data["text/html"] = "".join(pieces)
        return data, _provenance("chat", self, finish_reason=self.finish_reason, usage=dict(self.usage))

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the text as Markdown (never overwriting); returns the path."""
        return save_new(self.text.encode("utf-8"), path_or_dir, f"chat-{_digest(self.text.encode())}.md")


@dataclasses.dataclass(frozen=True, repr=False)
class VideoResult:
    """A generated video: ``data`` is the MP4 file; ``job`` the server's final job record."""

    data: bytes
    id: str
    prompt: str = ""
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    num_frames: int | None = None
    duration_s: float | None = None
    seed: int | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    model: str | None = None
    server_url: str | None = None
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    job: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    mime_type = "video/mp4"

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width and self.height else "?"
        return (
            f"VideoResult({self.id}, {size}, {self.duration_s}s @ {self.fps} fps, {len(self.data)} bytes, "
            f"seed={self.seed}, prompt={_short(self.prompt)!r})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        player = f'<video controls src="{_data_url(self.mime_type, self.data)}"></video>'
        return {"text/plain": repr(self), "text/html": player}, _provenance("video", self, id=self.id)

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the MP4 file (never overwriting); returns the path."""
        return save_new(self.data, path_or_dir, f"{self.id}.mp4")
