"""What the Studio keeps and shows of its images: the history record of each, previews for the page, the
strip of past results, and the static bundle that stands for the Studio where no widget can.

Rule 1: every image the Studio makes is recorded in history before it is shown (the client records it
        into the Studio's store; ``record_result`` reads the entry id), so no widget output holds an image
        that exists nowhere else; with history off, the Studio says so and pinning or saving keeps an image.
Rule 2: the page gets small JPEG previews (as binary buffers of the widget state, never base64), not the
        files; the full image stays in the kernel for pinning and saving, and in the history store.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vomni_nb._rendering import short
from vomni_nb.errors import HistoryError
from vomni_nb.widgets._studio_params import params_of_record

if TYPE_CHECKING:
    from vomni_nb._history import Entry, HistoryStore
    from vomni_nb.results import ImageResult

__all__ = ["PREVIEW_SIDE", "THUMB_SIDE", "one_image", "record_result", "jpeg_preview", "result_item", "strip_item",
           "load_strip", "studio_bundle"]

PREVIEW_SIDE = 768  # px: sharp at the page's 384 px on a 2x screen
THUMB_SIDE = 112


def one_image(output: Any) -> ImageResult:
    """``image()`` gives one ImageResult for one picture (an ImageBatch only when asked for several)."""
    images = getattr(output, "images", None)
    return images[0] if images else output  # type: ignore[no-any-return]


def record_result(store: HistoryStore | None, result: ImageResult) -> int | None:
    """The image's history entry id (None with history off).

    The client records every result itself, into the Studio's store (``history=store``), before the
    Studio sees it; a store that could not record raises :class:`HistoryError` here with the note,
    so the Studio shows the image and says why it is not in history.
    """
    if store is None:
        return None
    stored = result.stored
    if stored is not None and stored.note:
        raise HistoryError(stored.note)
    return result.history_id


def jpeg_preview(data: bytes, side: int) -> bytes:
    """A JPEG no larger than ``side`` px (the image itself when it cannot be read: the page shows what it can)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as picture:
            picture.thumbnail((side, side))
            out = io.BytesIO()
            picture.convert("RGB").save(out, "JPEG", quality=88 if side > THUMB_SIDE else 80)
    except (OSError, ValueError):
        return data
    return out.getvalue()


def _elapsed(result: ImageResult) -> float | None:
    value = result.timings.get("total_s")
    return round(float(value), 2) if isinstance(value, (int, float)) else None


def result_item(key: str, result: ImageResult, entry_id: int | None, preview: bytes) -> dict[str, Any]:
    """One result as the page shows it: seed, time, size, its parameters and a preview."""
    params = result.params
    return {
        "key": key, "entry_id": entry_id, "seed": None if result.seed is None else str(result.seed),
        "elapsed_s": _elapsed(result), "size": result.size, "prompt": result.prompt, "model": result.model or "",
        "negative": str(params.get("negative_prompt") or ""), "steps": params.get("num_inference_steps"),
        "guidance": params.get("guidance_scale"), "preview": preview,
    }


def strip_item(entry_id: int, record: Any, thumb: bytes, created: str = "") -> dict[str, Any]:
    """One past result in the strip: its thumbnail and the form values a click restores."""
    return {"id": entry_id, "created": created, "thumb": thumb, "params": params_of_record(record)}


def _thumb_of_entry(entry: Entry) -> bytes | None:
    for stored in entry.files:
        if stored.mime.startswith("image/") and stored.exists:
            try:
                return jpeg_preview(stored.path.read_bytes(), THUMB_SIDE)
            except OSError:
                return None
    return None


def load_strip(store: HistoryStore | None, limit: int) -> list[dict[str, Any]]:
    """The newest image entries with their files, as strip items (entries whose file is gone are left out)."""
    if store is None:
        return []
    items = []
    for entry in store.search(kind="image", limit=limit):
        if entry.status != "ok":
            continue
        thumb = _thumb_of_entry(entry)
        if thumb is not None:
            record = {**entry.record, "prompt": entry.prompt, "params": entry.params, "seed": entry.seed,
                      "model": entry.model}
            items.append(strip_item(entry.id, record, thumb, entry.created_at))
    return items


def studio_bundle(server: str, shown: Sequence[tuple[ImageResult, int | None, bytes]], made: int, *,
                  note: str = "", closed: bool = False) -> dict[str, str]:
    """The Studio without a widget: where it points, how many images it made, and the latest ``shown``
    (result, history id, small JPEG preview) with their seeds and history ids; ``text/plain`` says the same."""
    when = datetime.datetime.now().strftime("%H:%M:%S")
    state = "closed" if closed else "no widget front end here"
    lines = [f"Studio ({state}) · {server or 'no image server'} · {made} image(s) at {when}"]
    figures = []
    for result, entry_id, preview in shown:
        tag = f" · history #{entry_id}" if entry_id is not None else ""
        lines.append(f"  seed {result.seed} · {result.size}{tag} · {short(result.prompt)}")
        source = "data:image/jpeg;base64," + base64.b64encode(preview).decode("ascii")
        figures.append(f"<figure style='display:inline-block;margin:4px;text-align:center'><img src='{source}' "
                       f"style='max-width:160px;border-radius:4px'/><figcaption style='font-size:11px'>seed "
                       f"{result.seed}{html.escape(tag)}</figcaption></figure>")
    if note:
        lines.append(f"  {note}")
    body = (f"<div class='vomni-studio-static' style='font-family:var(--jp-ui-font-family,sans-serif);font-size:13px'>"
            f"<div><b>Studio</b> ({state}) · {html.escape(server or 'no image server')} · {made} image(s)</div>"
            f"<div>{''.join(figures)}</div>"
            + (f"<div style='opacity:.8'>{html.escape(note)}</div>" if note else "") + "</div>")
    return {"text/plain": "\n".join(lines), "text/html": body}
