"""Writing results to files: never overwriting, and every file carrying its recipe.

Rules: a save never replaces an existing file (``-1``, ``-2``, ... is added to a taken name, picked
with ``O_EXCL`` so two writers cannot collide). A saved PNG carries its recipe inside
(:func:`vomni_nb._recipes.png_with_recipe`: a ``parameters`` chunk as A1111 and the tools that copied it
read, and a ``vomni_nb`` chunk holding ``Provenance.to_json()``, both before the first IDAT); a recipe
already in the file (vomni-sim writes its own) is replaced, so every saved file has one schema. Any
other file (speech, video, JPEG/WebP images, chat text) gets a sidecar ``<stem>.json`` holding the same
record; the file's name is chosen so that its sidecar's name is free too. The bytes a PNG is saved with
are the bytes the history store keeps (:func:`image_bytes`), so a file saved here and one copied out
of the store are the same file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

from vomni_nb._recipes import png_with_recipe, sidecar_path, write_sidecar
from vomni_nb.errors import InvalidRequestError

if TYPE_CHECKING:
    from vomni_nb.results import ChatResult, ImageResult, SpeechResult, VideoResult

__all__ = ["PathLike", "save_new", "save_with_recipe", "save_result", "image_bytes", "image_file", "speech_file", "chat_file",
           "video_file", "digest"]

PathLike = Union[str, "os.PathLike[str]"]

IMAGE_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


def _target(target: PathLike, default_name: str) -> Path:
    """The path ``target`` names: a file path, or a directory (existing, ending in a slash, or a new name
    without a suffix: a file named ``out`` with no extension is never what was meant) to put ``default_name`` in."""
    path = Path(target).expanduser()
    if path.is_dir() or str(target).endswith(("/", os.sep)) or (not path.suffix and not path.exists()):
        path = path / default_name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _claim(path: Path, counter: int = 0) -> tuple[Path, int, int]:
    """The first free name among ``path``, ``stem-1.ext``, ``stem-2.ext``, ... from ``counter`` on, created
    with ``O_EXCL`` (safe against a second writer doing the same): (its path, an fd open for writing, counter)."""
    while True:
        candidate = path if counter == 0 else path.with_name(f"{path.stem}-{counter}{path.suffix}")
        try:
            return candidate, os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), counter
        except FileExistsError:
            counter += 1


def _write(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def save_new(data: bytes, target: PathLike, default_name: str) -> Path:
    """Write ``data`` to ``target`` (a file path, or a directory to put ``default_name`` in), never overwriting.

    When the name is taken, ``-1``, ``-2``, ... is added before the suffix. Returns the path written.
    """
    candidate, fd, _ = _claim(_target(target, default_name))
    _write(fd, data)
    return candidate


def save_with_recipe(data: bytes, target: PathLike, default_name: str, record: Mapping[str, Any]) -> Path:
    """:func:`save_new`, plus a sidecar ``<stem>.json`` holding ``record``; neither file overwrites anything.

    A name whose sidecar is taken (another file's recipe, or anything else) is passed over for the next one.
    """
    path = _target(target, default_name)
    if sidecar_path(path) == path:
        raise InvalidRequestError(f"{path} would be its own recipe file: save it under a suffix other than .json.")
    counter = 0
    while True:
        candidate, fd, counter = _claim(path, counter)
        _write(fd, data)
        try:
            write_sidecar(candidate, record)
        except FileExistsError:
            os.unlink(candidate)  # ours, just written: that name's sidecar belongs to something else
            counter += 1
            continue
        return candidate


def digest(data: bytes) -> str:
    """A short content hash for file names."""
    return hashlib.sha256(data).hexdigest()[:10]


def image_bytes(image: ImageResult) -> bytes:
    """The file an image is saved and stored as: a PNG carries its recipe; other formats are as they came.

    A PNG the chunk reader cannot walk (damaged) is kept as the server sent it.
    """
    if image.format != "png":
        return image.data
    try:
        return png_with_recipe(image.data, image.provenance.to_record())
    except InvalidRequestError:
        return image.data


def image_file(image: ImageResult) -> tuple[str, bytes]:
    """(default file name, bytes to write) for an image."""
    name = f"image-{image.seed if image.seed is not None else digest(image.data)}"
    return name + IMAGE_EXTENSIONS.get(image.format, ".img"), image_bytes(image)


def speech_file(speech: SpeechResult) -> tuple[str, bytes]:
    return f"speech-{digest(speech.audio)}.{speech.format}", speech.audio


def chat_file(chat: ChatResult) -> tuple[str, bytes]:
    data = chat.text.encode("utf-8")
    return f"chat-{digest(data)}.md", data


def video_file(video: VideoResult) -> tuple[str, bytes]:
    return f"{video.id}.mp4", video.data


def save_result(result: ImageResult | SpeechResult | VideoResult, target: PathLike) -> Path:
    """Save an image, speech or video result under ``target`` with its recipe (inside a PNG, else a sidecar)."""
    from vomni_nb.results import ImageResult, SpeechResult

    if isinstance(result, ImageResult):
        name, data = image_file(result)
        if result.format == "png":
            return save_new(data, target, name)
    elif isinstance(result, SpeechResult):
        name, data = speech_file(result)
    else:
        name, data = video_file(result)
    return save_with_recipe(data, target, name, result.provenance.to_record())
