"""How results show themselves in a notebook: static mime bundles with provenance metadata.

Rules: every bundle has ``text/plain`` and a rich form that survives saving, nbconvert, GitHub and
VS Code (``image/png``/``image/jpeg``, or HTML for audio, video and webp); players never autoplay;
grids show small previews, not the full files; the output metadata is ``{"vomni_nb": record}`` where
``record`` is the result's :meth:`Provenance.to_record` plus what the output itself adds (size,
format, usage, ...). No network, no IPython: a bundle is a pure function of the result.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vomni_nb.results import ChatResult, FailedImage, ImageBatch, ImageResult, SpeechResult, VideoResult

__all__ = ["MimeBundle", "AUDIO_MIME", "PREVIEW_SIDE", "output_record", "image_bundle", "batch_bundle",
           "failed_bundle", "speech_bundle", "speech_caption", "chat_bundle", "markdown_safe", "video_bundle", "short",
           "SWEPT", "swept_value", "varying", "label", "file_name", "rerun_note"]

MimeBundle = tuple[dict[str, Any], dict[str, Any]]

AUDIO_MIME = {"wav": "audio/wav", "pcm": "audio/L16", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg"}
PREVIEW_SIDE = 256  # px: a grid cell's longest side in the notebook


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
    return record


def image_bundle(image: ImageResult) -> MimeBundle:
    data: dict[str, Any] = {"text/plain": repr(image)}
    metadata: dict[str, Any] = {"vomni_nb": output_record(image, size=image.size, format=image.format,
                                                          index=image.index)}
    if image.format in ("png", "jpeg"):
        data[image.mime_type] = base64.b64encode(image.data).decode("ascii")
        metadata[image.mime_type] = {"width": image.width, "height": image.height}
    else:
        # Notebook front ends render only png/jpeg as image outputs; webp goes through HTML.
        data["text/html"] = f'<img src="{_data_url(image.mime_type, image.data)}" alt="{html.escape(image.prompt)}"/>'
    return data, metadata


def _preview(image: ImageResult, side: int = PREVIEW_SIDE) -> tuple[str, bytes]:
    """(mime, bytes) of a small JPEG for a grid cell; the image itself when it is already small."""
    if max(image.width, image.height) <= side:
        return image.mime_type, image.data
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(image.data)) as picture:
            picture.thumbnail((side, side))
            buffer = io.BytesIO()
            picture.convert("RGB").save(buffer, "JPEG", quality=85)
    except (OSError, ValueError):
        return image.mime_type, image.data
    return "image/jpeg", buffer.getvalue()


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
    # Previews, not the full files: four 1024x1024 PNGs would put ~9 MB into the saved notebook.
    from vomni_nb.results import ImageResult

    keys = varying(batch.images)
    cells = []
    for image in batch.images:
        caption = html.escape(label(image, keys))
        if isinstance(image, ImageResult):
            body = (f'<img src="{_data_url(*_preview(image))}" style="max-width:{PREVIEW_SIDE}px" '
                    f'alt="{html.escape(image.prompt)} ({caption})" title="{caption}"/>')
        else:
            body = (f"<div style='width:{PREVIEW_SIDE // 2}px;color:#c62828;white-space:normal'>"
                    f"✗ {html.escape(short(image.message, 200))}</div>")
        cells.append(f'<figure style="display:inline-block;margin:4px;vertical-align:top">{body}'
                     f"<figcaption>{caption}</figcaption></figure>")
    note = rerun_note(batch.images)
    items = [output_record(image, size=image.size, format=image.format, index=image.index) if isinstance(
        image, ImageResult) else failed_bundle(image)[1]["vomni_nb"] for image in batch.images]
    text = repr(batch) + (f"\n{note}" if note else "")
    page = f"<div>{''.join(cells)}</div>" + (f"<p><small>{html.escape(note)}</small></p>" if note else "")
    return {"text/plain": text, "text/html": page}, {"vomni_nb": {"kind": "image_batch", "items": items}}


def speech_caption(speech: SpeechResult) -> str:
    """``vivian · wav · 2.35 s``: what a player plays, under it (unknown parts left out)."""
    parts = [speech.voice or "", speech.format]
    if speech.duration_s is not None:
        parts.append(f"{speech.duration_s:.2f} s")
    return " · ".join(part for part in parts if part)


def _caption(text: str) -> str:
    return f'<figcaption style="font-size:smaller;opacity:0.7">{html.escape(text)}</figcaption>'


def speech_bundle(speech: SpeechResult) -> MimeBundle:
    player = (f'<figure style="margin:0"><audio controls src="{_data_url(*speech.playable())}"></audio>'
              f"{_caption(speech_caption(speech))}</figure>")
    record = output_record(speech, format=speech.format, sample_rate=speech.sample_rate, duration_s=speech.duration_s,
                           usage=dict(speech.usage))
    return {"text/plain": repr(speech), "text/html": player}, {"vomni_nb": record}


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
    pieces += [f'<img src="{_data_url(*_preview(image, 512))}" style="max-width:512px"/>' for image in chat.images]
    data: dict[str, Any] = {"text/plain": chat.text or repr(chat), "text/markdown": "\n\n".join(pieces)}
    record = output_record(chat, id=chat.id, finish_reason=chat.finish_reason, usage=dict(chat.usage),
                           audio_format=chat.audio_format)
    return data, {"vomni_nb": record}


def video_bundle(video: VideoResult) -> MimeBundle:
    player = f'<video controls src="{_data_url(video.mime_type, video.data)}"></video>'
    return {"text/plain": repr(video), "text/html": player}, {"vomni_nb": output_record(video, id=video.id)}
