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
from typing import Any, overload

from vomni_nb import _files, _rendering
from vomni_nb._files import PathLike
from vomni_nb._rendering import MimeBundle, short
from vomni_nb.errors import InvalidRequestError
from vomni_nb.provenance import Provenance

__all__ = ["ImageResult", "FailedImage", "ImageBatch", "SpeechResult", "ChatResult", "VideoResult", "Stored",
           "SUFFIXES"]


def _duration_s(frames: int | None, sample_rate: int | None) -> float | None:
    """Seconds of audio, when both counts are known."""
    if frames is None or not sample_rate:
        return None
    return frames / sample_rate


# The file suffixes each format may be saved under (the first is the one a default name gets).
SUFFIXES = {"png": (".png",), "jpeg": (".jpg", ".jpeg"), "webp": (".webp",), "wav": (".wav",), "mp3": (".mp3",),
            "flac": (".flac",), "opus": (".opus", ".ogg"), "pcm": (".pcm", ".raw"), "mp4": (".mp4",), "md": (".md",)}


def _checked_target(path_or_dir: PathLike, fmt: str, what: str) -> PathLike:
    """``path_or_dir``, unless it names a file whose suffix says another format (WebP bytes in ``x.png``)."""
    path = Path(path_or_dir).expanduser()
    allowed = SUFFIXES.get(fmt, ())
    if path.suffix and allowed and not path.is_dir() and path.suffix.lower() not in allowed:
        right = path.with_suffix(allowed[0]).name
        convert = f", or convert it first: .to_pil().save({path.name!r})" if what == "image" else ""
        raise InvalidRequestError(f"This {what} is {fmt.upper()}, so {path.name!r} would hold {fmt.upper()} bytes under "
                                  f"a {path.suffix} name. Save it as {right!r}{convert}.")
    return path_or_dir


def _provenance_of(kind: str) -> Any:
    return dataclasses.field(default_factory=lambda: Provenance(kind=kind))


@dataclasses.dataclass(frozen=True)
class Stored:
    """Where a result went in the history store: entry ``id`` and its ``files`` there (a result's own
    file first); or, when it could not be recorded, ``note`` saying why: a warning to show (the result
    itself is whole). Results that were not recorded (history off, built by hand) have ``stored=None``."""

    id: int | None = None
    files: tuple[Path, ...] = ()
    note: str | None = None


def _repr_with_history_id(own_repr: Any) -> Any:
    def __repr__(self: Any) -> str:
        text: str = own_repr(self)
        if self.history_id is None or not text.endswith(")"):
            return text
        return f"{text[:-1]}, history_id={self.history_id})"

    return __repr__


class _FromProvenance:
    """The fields every result reads from its provenance, and its place in the history."""

    provenance: Provenance
    stored: Stored | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every result's repr ends with its history id: added once here, so each class's repr stays its own.
        super().__init_subclass__(**kwargs)
        if "__repr__" in vars(cls):
            cls.__repr__ = _repr_with_history_id(vars(cls)["__repr__"])  # type: ignore[method-assign]

    @property
    def history_id(self) -> int | None:
        """The id of this result's entry in the history (``vomni_nb.history()``, ``rerun(id)``), once recorded."""
        return self.stored.id if self.stored is not None else None

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
    stored: Stored | None = None

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
        ``vomni_nb`` chunk with the provenance record, so any saved file can be rerun
        (``vomni_nb.rerun("file.png")``); JPEG and WebP files get it in ``<stem>.json`` beside them.
        """
        return _files.save_result(self, _checked_target(path_or_dir, self.format, "image"))

    def full(self) -> Any:
        """The image at full resolution, for display: a large result shows a preview (the notebook
        stays small); ``result.full()`` embeds the original file in the output on purpose."""
        return _rendering.FullImage(self)

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
    stored: Stored | None = None  # a failure is not in the history's file store
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

    @overload
    def __getitem__(self, index: int) -> ImageResult | FailedImage: ...

    @overload
    def __getitem__(self, index: slice) -> ImageBatch: ...

    def __getitem__(self, index: int | slice) -> ImageResult | FailedImage | ImageBatch:
        """One image (or the failure in its place), or (a slice) an ImageBatch of some: ``batch[:2]`` displays
        and saves like the batch."""
        if isinstance(index, slice):
            return ImageBatch(self.images[index], timings=self.timings)
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
        ids = sorted({image.history_id for image in self.images if image.history_id is not None})
        # Made and failed counted apart, as ImageGrid and SpeechBatch do: "9 images, 3 failed" is 12 places.
        return (f"ImageBatch({len(self.ok)} images{failed}, seeds={seeds}"
                + (f", history_ids={ids})" if ids else ")"))

    @property
    def history_ids(self) -> list[int | None]:
        """Each image's history id, in order (images of one request share theirs; a failed place has none)."""
        return [image.history_id for image in self.images]

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
    stored: Stored | None = None

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
        """Write the audio file (never overwriting), with its recipe in ``<stem>.json`` beside it; returns the path."""
        return _files.save_result(self, _checked_target(path_or_dir, self.format, "speech"))


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
    stored: Stored | None = None

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

    def save(self, path_or_dir: PathLike = ".") -> list[Path]:
        """Write every part of the answer (never overwriting): the text as Markdown, the audio, each image.

        ``path_or_dir`` is a directory (files named ``chat-<hash>.md``, ``.mp3``, ``-0.png`` ...) or a
        file name whose stem names them all (``"answer.md"`` -> ``answer.md``, ``answer.mp3``). An
        answer without text writes no Markdown file. Returns the paths written.
        """
        target = Path(path_or_dir).expanduser()
        is_file = bool(target.suffix) and not target.is_dir()
        if is_file and target.suffix.lower() != ".md":
            raise InvalidRequestError(f"A chat answer saves as Markdown plus its audio and images: give a directory "
                                      f"or a .md name (not {target.name!r}).")
        folder, stem = (target.parent, target.stem) if is_file else (target, "chat-" + self._digest())
        written: list[Path] = []
        if self.text:
            written.append(_files.save_new(self.text.encode("utf-8"), folder / f"{stem}.md", f"{stem}.md"))
        if self.audio is not None:
            fmt = self.audio_format or "wav"
            suffix = SUFFIXES.get(fmt, (f".{fmt}",))[0]
            written.append(_files.save_new(self.audio, folder / f"{stem}{suffix}", f"{stem}{suffix}"))
        for index, image in enumerate(self.images):
            name, data = _files.image_file(image)
            suffix = Path(name).suffix
            written.append(_files.save_new(data, folder / f"{stem}-{index}{suffix}", f"{stem}-{index}{suffix}"))
        return written

    def _digest(self) -> str:
        """A short hash of the whole answer (text, audio, images), so parts of one answer share a name."""
        return _files.digest(self.text.encode("utf-8") + (self.audio or b"") + b"".join(i.data for i in self.images))


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
    stored: Stored | None = None

    mime_type = "video/mp4"

    @property
    def prompt(self) -> str:
        return self.provenance.prompt

    def __repr__(self) -> str:
        size = f"{self.width}x{self.height}" if self.width and self.height else "?"
        duration = f"{self.duration_s:.2f}s" if self.duration_s is not None else "?s"
        fps = f" @ {self.fps:g} fps" if self.fps else ""
        frames = f", {self.num_frames} frames" if self.num_frames else ""
        return (
            f"VideoResult({self.id}, {size}, {duration}{fps}{frames}, {len(self.data)} bytes, "
            f"seed={self.seed}, prompt={short(self.prompt)!r})"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        return _rendering.video_bundle(self)

    def save(self, path_or_dir: PathLike = ".") -> Path:
        """Write the MP4 file (never overwriting), with its recipe in ``<stem>.json`` beside it; returns the path."""
        return _files.save_result(self, _checked_target(path_or_dir, "mp4", "video"))
