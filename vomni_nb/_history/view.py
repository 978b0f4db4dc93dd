"""The history table: a frozen object that shows entries as static HTML (with thumbnails) and text.

Thumbnails are made once, when the table is built, as small JPEG data URLs: displaying the table
reads nothing from disk, and the notebook output carries everything it shows (it survives saving,
nbconvert and GitHub). Pillow is imported only when there is an image to shrink.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vomni_nb._history import Entry

__all__ = ["HistoryTable", "build_table", "thumbnail_data_url"]

THUMBNAIL_SIDE = 96
_COLUMNS = ("id", "time", "kind", "model", "seed", "status", "prompt")


def thumbnail_data_url(path: Any, side: int = THUMBNAIL_SIDE) -> str | None:
    """A JPEG data URL of the image at ``path`` shrunk to fit ``side`` pixels; None if it cannot be read."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=70)
    except Exception:  # noqa: BLE001 - an unreadable image only loses its thumbnail
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cells(entry: Entry) -> tuple[str, ...]:
    model = (entry.model or "").rsplit("/", 1)[-1]
    prompt = entry.prompt if entry.status == "ok" or not entry.error else f"{entry.prompt} [{entry.error}]"
    return (
        str(entry.id), entry.created_at[:16].replace("T", " "), entry.kind, model,
        "" if entry.seed is None else str(entry.seed), entry.status, prompt,
    )


@dataclasses.dataclass(frozen=True, repr=False)
class HistoryTable:
    """Entries of the history as a table; displays itself (HTML with thumbnails, and text)."""

    entries: tuple[Entry, ...]
    thumbnails: tuple[str | None, ...]
    source: str = ""
    query: str = ""

    def __len__(self) -> int:
        return len(self.entries)

    def _title(self) -> str:
        count = f"{len(self.entries)} entr{'y' if len(self.entries) == 1 else 'ies'}"
        return f"History: {count}{', ' + self.query if self.query else ''} ({self.source})"

    def __repr__(self) -> str:
        rows = [_COLUMNS] + [tuple(_short(c, 24 if i == 3 else 60) for i, c in enumerate(_cells(e))) for e in self.entries]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
        lines = [self._title()]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
        return "\n".join(line.rstrip() for line in lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{name}</th>" for name in ("", *_COLUMNS))
        body = []
        for entry, thumbnail in zip(self.entries, self.thumbnails):
            cells = [html.escape(_short(c, 24) if i == 3 else c) for i, c in enumerate(_cells(entry))]
            image = (
                f'<img src="{thumbnail}" alt="#{entry.id}" style="max-width:{THUMBNAIL_SIDE}px;max-height:{THUMBNAIL_SIDE}px"/>'
                if thumbnail else ""
            )
            title = html.escape(str(entry.files[0].path), quote=True) if entry.files else ""
            body.append(
                f'<tr title="{title}"><td>{image}</td>'
                + "".join(f'<td style="text-align:left">{cell}</td>' for cell in cells)
                + "</tr>"
            )
        return (
            f'<div class="vomni-history"><p>{html.escape(self._title())}</p>'
            f'<table class="vomni-history-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        data = {"text/plain": repr(self), "text/html": self._repr_html_()}
        return data, {"vomni_nb": {"history_ids": [entry.id for entry in self.entries]}}


def build_table(entries: Sequence[Entry], *, source: str, query: str = "") -> HistoryTable:
    """A HistoryTable of ``entries`` with thumbnails of their first image file made now."""
    thumbnails = []
    for entry in entries:
        image = next((f for f in entry.files if f.mime.startswith("image/")), None)
        thumbnails.append(thumbnail_data_url(image.path) if image is not None else None)
    return HistoryTable(tuple(entries), tuple(thumbnails), source=source, query=query)
