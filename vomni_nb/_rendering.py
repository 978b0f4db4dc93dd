"""How results show themselves in a notebook: static mime bundles with provenance metadata.

Rules: every bundle has ``text/plain`` and a rich form that survives saving, nbconvert, GitHub and
VS Code (``image/png``/``image/jpeg``, or HTML for audio, video and webp); players never autoplay;
grids show small previews, not the full files; the output metadata is ``{"vomni_nb": record}`` where
``record`` is the result's :meth:`Provenance.to_record` plus what the output itself adds (size,
format, usage, ...) and, once the result is recorded, its ``history_id``. No network, no IPython: a
bundle is a pure function of the result. What is embedded and what stays on disk (previews of large
images, compressed speech, where the full file is) is :mod:`vomni_nb._embeds`' business.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vomni_nb import _embeds

if TYPE_CHECKING:
    from pathlib import Path

    from vomni_nb.results import ChatResult, FailedImage, ImageBatch, ImageResult, SpeechResult, VideoResult

__all__ = ["MimeBundle", "AUDIO_MIME", "PREVIEW_SIDE", "output_record", "image_bundle", "preview_bundle",
           "FullImage", "batch_bundle", "failed_bundle", "speech_bundle", "speech_caption", "chat_bundle",
           "markdown_safe", "video_bundle", "short", "SWEPT", "swept_value", "varying", "label", "file_name",
           "rerun_note", "failed_figure"]

MimeBundle = tuple[dict[str, Any], dict[str, Any]]

AUDIO_MIME = {"wav": "audio/wav", "pcm": "audio/L16", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg"}
PREVIEW_SIDE = _embeds.EmbedSettings.cell_side  # px: a grid cell's longest side in the notebook (by default)


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def output_record(result: Any, **output: Any) -> dict[str, Any]:
    """The result's provenance record with the output's own facts added (``metrics`` when it has any)."""
    record = result.provenance.to_record()
    metrics = getattr(result, "metrics", None)
    if metrics is not None:
        record["metrics"] = dict(metrics)
    record.update(output)
    stored = getattr(result, "stored", None)
    if stored is not None and stored.id is not None:
        record["history_id"] = stored.id
    if stored is not None and stored.note:
        record["history_note"] = stored.note
    return record


def _image_record(image: ImageResult) -> dict[str, Any]:
    return output_record(image, size=image.size, format=image.format, index=image.index)


def _note_html(result: Any) -> str:
    stored = getattr(result, "stored", None)
    if stored is None or not stored.note:
        return ""
    return f'<div style="color:#a15c00">⚠ not in the history: {html.escape(stored.note)}</div>'


def _with_note(text: str, result: Any) -> str:
    stored = getattr(result, "stored", None)
    return f"{text}\nwarning: not in the history: {stored.note}" if stored is not None and stored.note else text


def image_bundle(image: ImageResult) -> MimeBundle:
    """The image itself when it is light; a preview and where the full file is when it is not (_embeds rule 1)."""
    if _embeds.needs_preview(image):
        return preview_bundle(image)
    data: dict[str, Any] = {"text/plain": _with_note(repr(image), image)}
    metadata: dict[str, Any] = {"vomni_nb": _image_record(image)}
    if image.format in ("png", "jpeg"):
        data[image.mime_type] = base64.b64encode(image.data).decode("ascii")
        metadata[image.mime_type] = {"width": image.width, "height": image.height}
    else:
        # Notebook front ends render only png/jpeg as image outputs; webp goes through HTML.
        data["text/html"] = f'<img src="{_data_url(image.mime_type, image.data)}" alt="{html.escape(image.prompt)}"/>'
    return data, metadata


def preview_bundle(image: ImageResult, *, side: int | None = None, caption: str | None = None,
                   saved: Path | None = None) -> MimeBundle:
    """A preview of ``image`` (``side`` px, default ``_embeds.settings.preview_side``) with ``caption`` and
    where the full file is: ``saved`` (a copy written with ``--save``, linked when it lies under the
    notebook's folder), else its file in the history store, as a path. HTML and text/plain only: an
    ``image/jpeg`` part as well would embed the preview twice."""
    shown = _embeds.figure(image, side=side, caption=caption, saved=saved)
    text = f"{repr(image)}\n{shown.text}" if shown.text else repr(image)
    if not shown.preview.whole:
        text += "\nimage.full() shows the original here; image.save(DIR) writes it to DIR"
    record = _image_record(image)
    record["preview"] = {"mime": shown.preview.mime, "width": shown.preview.width, "height": shown.preview.height}
    return {"text/plain": _with_note(text, image), "text/html": f"<div>{shown.html}{_note_html(image)}</div>"}, \
        {"vomni_nb": record}


@dataclasses.dataclass(frozen=True)
class FullImage:
    """``image.full()``: the original file in the output, however large (it is put in the notebook)."""

    image: ImageResult

    def __repr__(self) -> str:
        return repr(self.image)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> MimeBundle:
        image = self.image
        data: dict[str, Any] = {"text/plain": repr(image)}
        if image.format in ("png", "jpeg"):
            data[image.mime_type] = base64.b64encode(image.data).decode("ascii")
        else:
            data["text/html"] = f'<img src="{_data_url(image.mime_type, image.data)}" alt="{html.escape(image.prompt)}"/>'
        return data, {"vomni_nb": _image_record(image)}


# What a sweep may vary: (wire name in params, the word captions and file names use).
SWEPT = (("model", "model"), ("size", "size"), ("num_inference_steps", "steps"), ("guidance_scale", "guidance"),
         ("seed", "seed"))


def swept_value(image: ImageResult | FailedImage, key: str) -> Any:
    """The value of one swept setting for an image (the model it came from, its seed, or a param)."""
    if key == "seed":
        return image.seed
    if key == "model":
        return image.model or image.params.get("model")
    return image.params.get(key)


def _n(image: ImageResult | FailedImage) -> int:
    count = image.params.get("n", image.params.get("num_outputs_per_prompt", 1))
    return count if isinstance(count, int) else 1


def varying(images: Sequence[ImageResult | FailedImage]) -> tuple[str, ...]:
    """The settings (wire names) whose values differ across ``images``; just the seed when none does."""
    keys = tuple(key for key, _ in SWEPT if len({repr(swept_value(image, key)) for image in images}) > 1)
    return keys or ("seed",)


def _shown_value(key: str, value: Any) -> str:
    if key == "model" and isinstance(value, str):
        return value.rsplit("/", 1)[-1]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def label(image: ImageResult | FailedImage, keys: Sequence[str]) -> str:
    """A caption naming the swept values (``guidance 4 · steps 8``); ``seed 5 #1`` for image 1 of n."""
    words = dict(SWEPT)
    text = " · ".join(f"{words[key]} {_shown_value(key, swept_value(image, key))}" for key in keys)
    return text + (f" #{image.index}" if _n(image) > 1 else "")


def file_name(image: ImageResult, keys: Sequence[str]) -> str:
    """A file name carrying the swept values: ``image-guidance4-steps8.png``, ``image-seed5-n1.png``."""
    from vomni_nb._files import IMAGE_EXTENSIONS

    words = dict(SWEPT)
    parts = [f"{words[key]}{_shown_value(key, swept_value(image, key))}" for key in keys]
    if _n(image) > 1:
        parts.append(f"n{image.index}")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(["image", *parts]))
    return stem + IMAGE_EXTENSIONS.get(image.format, ".img")


def rerun_note(images: Sequence[ImageResult | FailedImage]) -> str:
    """Said under images made n at a time: their seed is the request's, so only #0 reruns alone."""
    if not any(_n(image) > 1 for image in images):
        return ""
    return ("#1, #2 … were made in the same request as #0 and share its seed: only #0 reruns alone "
            "(that seed with n=1); the others rerun with the same seed and n.")


def failed_bundle(failed: FailedImage) -> MimeBundle:
    text = f"✗ {failed.message}"
    return ({"text/plain": text, "text/html": f"<div style='color:#c62828'>{html.escape(text)}</div>"},
            {"vomni_nb": {**failed.provenance.to_record(), "error": failed.message}})


def batch_bundle(batch: ImageBatch) -> MimeBundle:
    # Previews, not the full files: sixteen 1024x1024 PNGs would put ~30 MB into the saved notebook.
    # Captions carry what varies across the batch (issue 7.14); a failed request shows its error in its place.
    from vomni_nb.results import ImageResult

    keys = varying(batch.images)
    cells, lines = [], [repr(batch)]
    for image in batch.images:
        if isinstance(image, ImageResult):
            figure = _embeds.figure(image, side=_embeds.settings.cell_side, caption=label(image, keys))
            cells.append(figure.html)
            if figure.file is not None:
                lines.append(f"  {figure.text}")
        else:
            cells.append(failed_figure(image, label(image, keys)))
    notes = "".join(dict.fromkeys(_note_html(image) for image in batch.images))
    note = rerun_note(batch.images)
    items = [_image_record(image) if isinstance(image, ImageResult) else failed_bundle(image)[1]["vomni_nb"]
             for image in batch.images]
    page = f"<div>{''.join(cells)}{notes}</div>" + (f"<p><small>{html.escape(note)}</small></p>" if note else "")
    return ({"text/plain": "\n".join(lines + ([note] if note else [])), "text/html": page},
            {"vomni_nb": {"kind": "image_batch", "items": items}})


def failed_figure(failed: FailedImage, caption: str) -> str:
    """A failed request's place in a grid: its error where the picture would be, and its caption."""
    side = _embeds.settings.cell_side
    return (f"<figure style='display:inline-block;margin:4px;vertical-align:top'><div style='max-width:{side}px;"
            f"color:#c62828;white-space:normal'>✗ {html.escape(short(failed.message, 200))}</div>"
            f"<figcaption style='font-size:90%'>{html.escape(caption)}</figcaption></figure>")


def speech_caption(speech: SpeechResult) -> str:
    """``vivian · wav · 2.35 s``: what a player plays, under it (unknown parts left out)."""
    parts = [speech.voice or "", speech.format]
    if speech.duration_s is not None:
        parts.append(f"{speech.duration_s:.2f} s")
    return " · ".join(part for part in parts if part)


def _caption(text: str) -> str:
    return f'<figcaption style="font-size:smaller;opacity:0.7">{html.escape(text)}</figcaption>'


def speech_bundle(speech: SpeechResult) -> MimeBundle:
    player = (f'<figure style="margin:0"><audio controls src="{_data_url(*_embeds.compressed_audio(*speech.playable()))}">'
              f"</audio>{_caption(speech_caption(speech))}</figure>")
    record = output_record(speech, format=speech.format, sample_rate=speech.sample_rate, duration_s=speech.duration_s,
                           usage=dict(speech.usage))
    data = {"text/plain": _with_note(repr(speech), speech), "text/html": player + _note_html(speech)}
    return data, {"vomni_nb": record}


# Inline code (a run of backticks, then the same run) and fenced blocks are left as written.
_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _escape_prose(text: str) -> str:
    # A lone "$" starts TeX in JupyterLab (its markdown pre-pass, then MathJax on the page), so "$5 ... $10"
    # became italic maths. An entity alone is not enough (MathJax reads the page's text); an element around
    # it is, since MathJax never pairs delimiters across elements. "<" would start raw HTML the renderer eats.
    return text.replace("<", "&lt;").replace("$", "<span>&#36;</span>")


def markdown_safe(text: str) -> str:
    """``text`` as Markdown that shows what was written: ``$`` never starts maths, ``<`` never starts HTML.

    Markdown itself (emphasis, lists, headings, code) is kept, since chat models write it on purpose;
    code spans and fenced code blocks are left exactly as they are.
    """
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            out.append(line)
            continue
        if opening:
            fence = opening.group(1)
            out.append(line)
            continue
        last = 0
        for span in _CODE_SPAN.finditer(line):
            out.append(_escape_prose(line[last:span.start()]))
            out.append(span.group(0))
            last = span.end()
        out.append(_escape_prose(line[last:]))
    return "".join(out)


def chat_bundle(chat: ChatResult) -> MimeBundle:
    # One rendering whatever the answer holds: Markdown, with the audio player and pictures after the text
    # (an HTML form beside it would win in JupyterLab and show the same text differently).
    pieces = [markdown_safe(chat.text)] if chat.text else []
    if chat.audio is not None:
        mime = AUDIO_MIME.get(chat.audio_format or "wav", "audio/wav")
        pieces.append(f'<audio controls src="{_data_url(mime, chat.audio)}"></audio>')
    pieces += [f'<img src="{_embeds.preview(image, 512).data_url}" style="max-width:512px"/>' for image in chat.images]
    stored = chat.stored
    if stored is not None and stored.note:  # Markdown, like the rest (an HTML part would win over it)
        pieces.append(f"*⚠ not in the history: {markdown_safe(stored.note)}*")
    data: dict[str, Any] = {"text/plain": _with_note(chat.text or repr(chat), chat),
                            "text/markdown": "\n\n".join(pieces)}
    record = output_record(chat, id=chat.id, finish_reason=chat.finish_reason, usage=dict(chat.usage),
                           audio_format=chat.audio_format)
    return data, {"vomni_nb": record}


def video_bundle(video: VideoResult) -> MimeBundle:
    player = f'<video controls src="{_data_url(video.mime_type, video.data)}"></video>' + _note_html(video)
    data = {"text/plain": _with_note(repr(video), video), "text/html": player}
    return data, {"vomni_nb": output_record(video, id=video.id)}
