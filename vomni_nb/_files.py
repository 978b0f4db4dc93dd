"""Writing results to files: never overwriting, and PNGs carrying their recipe.

Rules: a save never replaces an existing file (``-1``, ``-2``, ... is added to a taken name, picked
with ``O_EXCL`` so two writers cannot collide); a saved PNG carries two text chunks, ``parameters``
(the line other image tools write and read) and ``vomni_nb`` (the result's provenance record, the
same one the notebook metadata and the history store hold). A ``vomni_nb`` chunk already in the
file (vomni-sim writes its own) is replaced by ours, so every saved file has one schema; a foreign
``parameters`` chunk is kept.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from vomni_nb.results import ChatResult, ImageResult, SpeechResult, VideoResult

__all__ = ["PathLike", "save_new", "png_with_text", "a1111_parameters", "image_file", "speech_file", "chat_file",
           "video_file", "digest"]

PathLike = Union[str, "os.PathLike[str]"]

IMAGE_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
RECIPE_KEY = "vomni_nb"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt")


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


def digest(data: bytes) -> str:
    """A short content hash for file names."""
    return hashlib.sha256(data).hexdigest()[:10]


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole chunk bytes) of each chunk after the signature."""
    chunks, offset = [], len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        end = offset + 12 + length
        chunks.append((data[offset + 4 : offset + 8], data[offset:end]))
        offset = end
    return chunks


def _text_keyword(chunk: bytes) -> bytes:
    return chunk[8:].split(b"\0", 1)[0]


def png_with_text(data: bytes, texts: Mapping[str, str], *, replace: Collection[str] = ()) -> bytes:
    """``data`` with UTF-8 iTXt chunks added before IEND.

    A key the file already has is left alone, unless it is in ``replace``: then the old chunk goes.
    Anything that is not a well-formed PNG comes back unchanged.
    """
    if not data.startswith(_PNG_SIGNATURE) or data[-12:-8] != b"\0\0\0\0" or data[-8:-4] != b"IEND":
        return data
    dropped = {key.encode("latin-1") for key in replace}
    kept = [chunk for kind, chunk in _chunks(data)
            if not (kind in _TEXT_CHUNKS and _text_keyword(chunk) in dropped)]
    present = {_text_keyword(chunk) for chunk in kept if chunk[4:8] in _TEXT_CHUNKS}
    added = b""
    for key, text in texts.items():
        keyword = key.encode("latin-1")
        if keyword in present:
            continue
        body = keyword + b"\0\0\0\0\0" + text.encode("utf-8")  # no compression, no language tags
        added += struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    return _PNG_SIGNATURE + b"".join(kept[:-1]) + added + kept[-1]


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


def image_file(image: ImageResult) -> tuple[str, bytes]:
    """(default file name, bytes to write): PNGs get their recipe chunks."""
    name = f"image-{image.seed if image.seed is not None else digest(image.data)}"
    data = image.data
    if image.format == "png":
        texts = {"parameters": a1111_parameters(image), RECIPE_KEY: image.provenance.to_json()}
        data = png_with_text(data, texts, replace=(RECIPE_KEY,))
    return name + IMAGE_EXTENSIONS.get(image.format, ".img"), data


def speech_file(speech: SpeechResult) -> tuple[str, bytes]:
    return f"speech-{digest(speech.audio)}.{speech.format}", speech.audio


def chat_file(chat: ChatResult) -> tuple[str, bytes]:
    data = chat.text.encode("utf-8")
    return f"chat-{digest(data)}.md", data


def video_file(video: VideoResult) -> tuple[str, bytes]:
    return f"{video.id}.mp4", video.data
