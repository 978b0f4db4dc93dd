"""What a generation gives back: frozen result objects, each carrying its :class:`Provenance`.

A result holds the output bytes and what was decoded from them (size, format, sample rate, ...),
the server's metrics, and ``provenance`` (server, model, prompt, params, seed, timings, created,
request id). ``result.model``, ``result.seed``, ``result.params`` ... read from the provenance, and
``result.recipe`` gives the keyword arguments that ask for the same result again
(``client.image(**image.recipe)``). Results display themselves (:mod:`vomni_nb._rendering`) and save
themselves (:mod:`vomni_nb._files`); nothing here touches the network or imports IPython or Pillow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vomni_nb import _files, _rendering
from vomni_nb._files import PathLike
from vomni_nb._rendering import MimeBundle, short
from vomni_nb.provenance import Provenance

__all__ = ["ImageResult", "FailedImage", "ImageBatch", "SpeechResult", "ChatResult", "VideoResult"]


def _duration_s(frames: int | None, sample_rate: int | None) -> float | None:
    """Seconds of audio, when both counts are known."""
    if frames is None or not sample_rate:
        return None
    return frames / sample_rate


def _provenance_of(kind: str) -> Any:
    return dataclasses.field(default_factory=lambda: Provenance(kind=kind))


class _FromProvenance:
    """The fields every result reads from its provenance."""

    provenance: Provenance

    @property
    def model(self) -> str | None:
        return self.provenance.model

    @property
    def server_url(self) -> str | None:
        return self.provenance.server_url

    @property
    def params(self) -> Mapping[str, Any]:
        """What the server was sent, under the wire names (``num_inference_steps``, ``guidance_scale``)."""
        return self.provenance.params

    @property
    def seed(self) -> int | None:
        return self.provenance.seed

    @property
    def timings(self) -> Mapping[str, float]:
        return self.provenance.timings

    @property
    def recipe(self) -> dict[str, Any]:
        """Keyword arguments that ask for this result again: ``client.image(**image.recipe)``."""
        return self.provenance.recipe


@dataclasses.dataclass(frozen=True, repr=False)
class ImageResult(_FromProvenance):
    """One generated image: ``data`` is the encoded file (``format`` png, jpeg or webp)."""

    data: bytes
    format: str
    width: int
    height: int
    provenance: Provenance = _provenance_of("image")
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    index: int = 0  # its place among the n images of one request

    @property
    def prompt(self) -> str:
        return self.provenance.prompt

    @property
    def mime_type(self) -> str:
        return f"image/{self.format}"

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def __repr__(self) -> str:
        return (
            f"ImageResult({self.size} {self.format}, {len(self.data)} bytes, seed={self.seed}, "
            f"model={self.model!r}, prompt={short(self.prompt)!r})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return _rendering.image_bundle(self)

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the image file (never overwriting); returns the path.

        PNG files carry their recipe: a ``parameters`` text chunk as other image tools write it, and a
        ``vomni_nb`` chunk with the provenance record, so any saved file can be rerun.
        """
        name, data = _files.image_file(self)
        return _files.save_new(data, path_or_dir, name)

    def to_pil(self) -> Any:
        """The image as a ``PIL.Image.Image``."""
        import io

        from PIL import Image

        return Image.open(io.BytesIO(self.data))


@dataclasses.dataclass(frozen=True, repr=False)
class FailedImage(_FromProvenance):
    """The place of an image that could not be made, in a sweep: ``error`` says why, ``provenance`` what
    was asked (prompt, params under their wire names, seed). A sweep never drops its finished images
    because one request failed: the failure stands in its place (``batch.failures`` lists them)."""

    error: Exception
    provenance: Provenance = _provenance_of("image")
    index: int = 0
    ok = False

    @property
    def prompt(self) -> str:
        return self.provenance.prompt

    @property
    def message(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"

    def __repr__(self) -> str:
        return f"FailedImage(seed={self.seed}, {type(self.error).__name__}: {short(str(self.error), 80)!r})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return _rendering.failed_bundle(self)


@dataclasses.dataclass(frozen=True, repr=False)
class ImageBatch:
    """Several images from one request (``n`` > 1) or a sweep; indexable like a tuple.

    In a sweep a failed request leaves a :class:`FailedImage` in its place: ``ok`` holds the images,
    ``failures`` the failed places (``client.images(..., strict=True)`` raises instead).
    """

    images: tuple[ImageResult | FailedImage, ...]
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageResult | FailedImage]:
        return iter(self.images)

    def __getitem__(self, index: int) -> ImageResult | FailedImage:
        return self.images[index]

    @property
    def ok(self) -> tuple[ImageResult, ...]:
        """The images that were made."""
        return tuple(image for image in self.images if isinstance(image, ImageResult))

    @property
    def failures(self) -> tuple[FailedImage, ...]:
        """The places whose request failed."""
        return tuple(image for image in self.images if isinstance(image, FailedImage))

    def __repr__(self) -> str:
        seeds = [image.seed for image in self.images]
        failed = f", {len(self.failures)} failed" if self.failures else ""
        return f"ImageBatch({len(self.images)} images{failed}, seeds={seeds})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return _rendering.batch_bundle(self)

    def save(self, directory: PathLike = ".") -> list[Path]:
        """Save every image into ``directory`` (failed places have no file); returns the paths. File names
        carry what varies across the batch (``image-seed3-guidance4.png``, ``image-seed5-n1.png``)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        keys = _rendering.varying(self.images)
        return [image.save(Path(directory) / _rendering.file_name(image, keys)) for image in self.ok]


@dataclasses.dataclass(frozen=True, repr=False)
class SpeechResult(_FromProvenance):
    """Generated speech: ``audio`` is a complete file in ``format`` (pcm results are wrapped as WAV)."""

    audio: bytes
    format: str
    sample_rate: int | None
    channels: int | None = None
    frames: int | None = None
    provenance: Provenance = _provenance_of("speech")
    usage: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def text(self) -> str:
        """The text that was spoken."""
        return self.provenance.prompt

    @property
    def voice(self) -> str | None:
        voice = self.params.get("voice")
        return voice if isinstance(voice, str) else None

    @property
    def duration_s(self) -> float | None:
        return _duration_s(self.frames, self.sample_rate)

    @property
    def mime_type(self) -> str:
        return _rendering.AUDIO_MIME.get(self.format, "application/octet-stream")

    def __repr__(self) -> str:
        duration = f"{self.duration_s:.2f}s" if self.duration_s is not None else "?s"
        rate = f"{self.sample_rate} Hz" if self.sample_rate else f"{len(self.audio)} bytes"  # mp3 etc.: not decoded
        return (
            f"SpeechResult({self.format}, {duration}, {rate}, voice={self.voice!r}, "
            f"model={self.model!r}, text={short(self.text)!r})"
        )

    def playable(self) -> tuple[str, bytes]:
        """(mime type, bytes) a browser can play: raw PCM is wrapped in a WAV header."""
        if self.format == "pcm":
            from vomni_nb.protocol.wav import pcm_to_wav

            return "audio/wav", pcm_to_wav(self.audio, self.sample_rate or 24000, self.channels or 1)
        return self.mime_type, self.audio

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return _rendering.speech_bundle(self)

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the audio file (never overwriting); returns the path."""
        name, data = _files.speech_file(self)
        return _files.save_new(data, path_or_dir, name)


@dataclasses.dataclass(frozen=True, repr=False)
class ChatResult(_FromProvenance):
    """A chat answer: text, optional audio (a WAV/... file) and images, with usage and provenance."""

    text: str
    audio: bytes | None = None
    audio_format: str | None = None
    sample_rate: int | None = None
    audio_frames: int | None = None
    images: tuple[ImageResult, ...] = ()
    finish_reason: str | None = None
    id: str | None = None
    provenance: Provenance = _provenance_of("chat")
    usage: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def prompt(self) -> str:
        return self.provenance.prompt

    @property
    def audio_duration_s(self) -> float | None:
        return _duration_s(self.audio_frames, self.sample_rate)

    def __repr__(self) -> str:
        parts = [repr(short(self.text, 80))]
        if self.audio is not None:
            parts.append(f"audio={self.audio_format} {len(self.audio)} bytes")
        if self.images:
            parts.append(f"images={len(self.images)}")
        return f"ChatResult({', '.join(parts)}, model={self.model!r})"

    def __str__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return _rendering.chat_bundle(self)

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the text as Markdown (never overwriting); returns the path."""
        name, data = _files.chat_file(self)
        return _files.save_new(data, path_or_dir, name)


@dataclasses.dataclass(frozen=True, repr=False)
class VideoResult(_FromProvenance):
    """A generated video: ``data`` is the MP4 file; ``job`` the server's final job record."""

    data: bytes
    id: str
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    num_frames: int | None = None
    duration_s: float | None = None
    provenance: Provenance = _provenance_of("video")
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    job: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    mime_type = "video/mp4"

    @property
    def prompt(self) -> str:
        return self.provenance.prompt

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width and self.height else "?"
        return (
            f"VideoResult({self.id}, {size}, {self.duration_s}s @ {self.fps} fps, {len(self.data)} bytes, "
            f"seed={self.seed}, prompt={short(self.prompt)!r})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return _rendering.video_bundle(self)

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the MP4 file (never overwriting); returns the path."""
        name, data = _files.video_file(self)
        return _files.save_new(data, path_or_dir, name)
