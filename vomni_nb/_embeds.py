"""What a notebook output embeds, and what stays on disk: image previews, compressed speech, links.

A notebook saves every output in its JSON, so a sweep of full-size PNGs makes a file of tens of
megabytes that git and GitHub choke on. The originals belong on disk (the history store keeps every
output file, and ``result.save()`` writes one anywhere); the notebook holds what a reader needs to see.

Rules:

1. An image file above :attr:`EmbedSettings.preview_above_bytes` is shown as a JPEG preview
   :attr:`EmbedSettings.preview_side` px on its long side; a smaller one is shown as it is.
2. A grid cell is a preview :attr:`EmbedSettings.cell_side` px on its long side, whatever its size
   (eight 256 px PNGs are 1.1 MB, their JPEG previews ~50 KB), unless the file itself is smaller.
3. Speech is embedded compressed: a WAV becomes a mono MP3 at :attr:`EmbedSettings.speech_kbps`
   when PyAV (``av``, installed with vomni-sim) can encode it; otherwise, and for formats that are
   already compressed (mp3, opus, flac), the file is embedded as it came. The original is in the store.
4. Links. A Jupyter page cannot open ``file://`` URLs, and the history store lies outside the Jupyter
   server's root, so an output names the full file by its path, as text (copy it, or open it from
   Python). It links to the file only when the file lies under the notebook's folder (the kernel's
   working directory): a relative ``href``, which JupyterLab and Notebook 7 open in a tab and which
   still works in nbconvert HTML beside the files. ``result.save("out/")`` puts a copy there (the
   magics' ``--save``); ``result.full()`` embeds the original in the notebook on purpose.

Pure functions of bytes and settings; Pillow and PyAV are imported only when there is work for them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import io
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vomni_nb.errors import InvalidRequestError

if TYPE_CHECKING:
    from vomni_nb.results import ImageResult

__all__ = ["EmbedSettings", "settings", "configure", "Preview", "Figure", "preview", "needs_preview", "figure",
           "relative_link", "compressed_audio", "data_url"]


@dataclasses.dataclass
class EmbedSettings:
    """How heavy outputs may be (change them with :func:`configure`; the magics expose them as ``%config``)."""

    preview_side: int = 512  # px: a large single image's preview, long side
    preview_above_bytes: int = 256 * 1024  # files larger than this are shown as previews
    cell_side: int = 256  # px: a grid cell's preview, long side
    jpeg_quality: int = 80
    speech_kbps: int | None = 32  # MP3 bit rate for embedded speech; None embeds the file as it came


settings = EmbedSettings()


def configure(**changes: Any) -> EmbedSettings:
    """Change :data:`settings` (``configure(preview_side=768, speech_kbps=None)``); returns them."""
    names = {field.name for field in dataclasses.fields(EmbedSettings)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise InvalidRequestError(f"Unknown embed setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}.")
    for name, value in changes.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidRequestError(f"{name} must be a positive whole number; got {value!r}.")
        if value is None and name != "speech_kbps":
            raise InvalidRequestError(f"{name} cannot be None.")
        setattr(settings, name, value)
    return settings


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclasses.dataclass(frozen=True)
class Preview:
    """What an output embeds for an image: ``data`` in ``mime``, ``width`` x ``height``; ``whole`` when it
    is the image file itself (already small enough)."""

    mime: str
    data: bytes
    width: int
    height: int
    whole: bool

    @property
    def data_url(self) -> str:
        return data_url(self.mime, self.data)


def needs_preview(image: ImageResult) -> bool:
    """Whether a single image is too heavy to embed as it is (rule 1)."""
    return len(image.data) > settings.preview_above_bytes


def preview(image: ImageResult, side: int | None = None) -> Preview:
    """A JPEG of ``image`` at most ``side`` px (default :attr:`EmbedSettings.preview_side`) on its long side;
    the file itself when it is smaller than that JPEG would be, or cannot be decoded."""
    side = side or settings.preview_side
    whole = Preview(image.mime_type, image.data, image.width, image.height, whole=True)
    try:
        from PIL import Image

        with Image.open(io.BytesIO(image.data)) as picture:
            picture.thumbnail((side, side))
            width, height = picture.size
            buffer = io.BytesIO()
            picture.convert("RGB").save(buffer, "JPEG", quality=settings.jpeg_quality, optimize=True)
    except (OSError, ValueError):
        return whole  # not an image Pillow reads: show it as it came
    jpeg = buffer.getvalue()
    return whole if len(jpeg) >= len(image.data) else Preview("image/jpeg", jpeg, width, height, whole=False)


def relative_link(path: Path | None, base: Path | None = None) -> str | None:
    """``path`` relative to ``base`` (default: the working directory, a notebook's folder) when it lies
    under it, as a URL path; None otherwise (rule 4)."""
    if path is None:
        return None
    try:
        relative = Path(os.path.abspath(path)).relative_to(os.path.abspath(base or Path.cwd()))
    except ValueError:
        return None
    return "/".join(html.escape(part, quote=True) for part in relative.parts)


@dataclasses.dataclass(frozen=True)
class Figure:
    """One image as an output shows it: ``html`` (a ``<figure>``: preview and caption), ``text`` (one line
    for text/plain), the ``preview`` embedded, and where the full file is (``file``, ``link``)."""

    html: str
    text: str
    preview: Preview
    file: Path | None
    link: str | None


def _file_of(image: ImageResult, saved: Path | None) -> Path | None:
    if saved is not None:
        return Path(saved)
    stored = getattr(image, "stored", None)
    files = getattr(stored, "files", ())
    return Path(files[0]) if files else None


def figure(image: ImageResult, *, side: int | None = None, caption: str | None = None, saved: Path | None = None,
           base: Path | None = None) -> Figure:
    """``image`` as a figure: a preview (``side`` px; a cell passes ``settings.cell_side``), ``caption``,
    and where the full file is: ``saved`` (a copy the caller wrote, e.g. ``--save``), else the history
    store's file. A link appears only for a file under ``base`` (default: the working directory)."""
    shown = preview(image, side)
    file = _file_of(image, saved)
    link = relative_link(file, base)
    history_id = getattr(image, "history_id", None)
    facts = [caption] if caption else []
    if not shown.whole:
        facts.append(f"preview of the {image.width}x{image.height} {image.format.upper()}")
    if history_id is not None:
        facts.append(f"history #{history_id}")
    text = " · ".join(facts)
    where = ""
    if file is not None and not shown.whole:
        text += f" · full file: {file}"
        opener = f' <a href="{link}" target="_blank">open</a>' if link else ""
        where = f'<br/><span style="font-size:85%">full file: <code>{html.escape(str(file))}</code>{opener}</span>'
    label = html.escape(" · ".join(facts))
    img = (f'<img src="{shown.data_url}" width="{shown.width}" height="{shown.height}" '
           f'alt="{html.escape(image.prompt, quote=True)}"/>')
    body = f'<figure style="display:inline-block;margin:4px;vertical-align:top">{img}' \
           f'<figcaption style="font-size:90%;max-width:{max(shown.width, 160)}px;overflow-wrap:anywhere">' \
           f'{label}{where}</figcaption></figure>'  # a long file path wraps under its picture, not past the grid
    return Figure(html=body, text=text, preview=shown, file=file, link=link)


# --- speech -----------------------------------------------------------------------------------------

_AUDIO_CACHE: OrderedDict[tuple[str, int | None], tuple[str, bytes]] = OrderedDict()
_AUDIO_CACHE_SIZE = 8


def compressed_audio(mime: str, data: bytes) -> tuple[str, bytes]:
    """(mime, bytes) to embed for an audio file: a WAV as MP3 at :attr:`EmbedSettings.speech_kbps` when
    PyAV can make one and it is smaller; anything else as it came (rule 3). Results display more than
    once (each save, each front end), so the last few encodings are kept."""
    kbps = settings.speech_kbps
    if kbps is None or mime != "audio/wav" or len(data) < 64 * 1024:
        return mime, data
    key = (hashlib.sha256(data).hexdigest(), kbps)
    if key in _AUDIO_CACHE:
        _AUDIO_CACHE.move_to_end(key)
        return _AUDIO_CACHE[key]
    encoded = _wav_to_mp3(data, kbps * 1000)
    found = ("audio/mpeg", encoded) if encoded is not None and len(encoded) < len(data) else (mime, data)
    _AUDIO_CACHE[key] = found
    if len(_AUDIO_CACHE) > _AUDIO_CACHE_SIZE:
        _AUDIO_CACHE.popitem(last=False)
    return found


def _wav_to_mp3(wav: bytes, bit_rate: int) -> bytes | None:
    try:
        import av
    except ImportError:
        return None  # no encoder here: the WAV is embedded as it is
    output = io.BytesIO()
    try:
        with av.open(io.BytesIO(wav)) as source, av.open(output, "w", format="mp3") as target:
            rate = source.streams.audio[0].rate
            rate = rate if rate in _MP3_RATES else 24000  # the encoder runs at the MPEG rates only
            stream: Any = target.add_stream("libmp3lame", rate=rate, layout="mono")  # type: ignore[call-overload]
            stream.bit_rate = bit_rate
            resampler = av.AudioResampler(format="s16p", layout="mono", rate=rate)
            for frame in source.decode(audio=0):
                for piece in resampler.resample(frame):
                    target.mux(stream.encode(piece))
            for piece in resampler.resample(None):
                target.mux(stream.encode(piece))
            target.mux(stream.encode(None))
    except Exception:  # noqa: BLE001 - an encoder failure only costs notebook weight
        return None
    return output.getvalue()


_MP3_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
