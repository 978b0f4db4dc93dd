"""What a sweep gives back: :class:`ImageGrid`, a frozen result that displays itself as a labelled grid.

One swept axis is a labelled row (wrapped every few cells); two are an X/Y plot with the X values
across the top and the Y values down the side. Each cell holds the images of one request (several
with ``n`` > 1, labelled ``#0``, ``#1``...) or the :class:`~vomni_nb.results.FailedImage` that stands
in its place. The notebook gets compressed previews (the grid cells of :mod:`vomni_nb._embeds`: JPEG
data URLs, ``cell_side`` px, each ``<img>`` with alt text and a caption naming its swept values, its
history id and where the full file is) and ``text/plain``; the full-resolution files stay in the result
(``grid.images``), the history store and ``grid.save(DIR)``. Rendering is a pure function of the grid
(Pillow for the previews); the live view of a running sweep (``live_bundle``) draws the same table with
its pending cells.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vomni_nb._rendering import output_record, rerun_note, short
from vomni_nb.results import FailedImage, ImageBatch, ImageResult

if TYPE_CHECKING:
    from vomni_nb._files import PathLike

__all__ = ["Axis", "GridCell", "ImageGrid", "cell_label", "live_bundle"]

COLUMNS = 4  # a one-axis sweep wraps after this many cells


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept setting: ``name`` (seed, guidance, steps, size, model or server) and its values, in order."""

    name: str
    values: tuple[Any, ...]

    def caption(self, value: Any) -> str:
        if self.name == "model" and isinstance(value, str):
            value = value.rsplit("/", 1)[-1]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return f"{self.name} {value}"


@dataclasses.dataclass(frozen=True)
class GridCell:
    """One request of the sweep: its swept ``values``, and the images it gave (or the failure in their place).

    ``outputs`` is empty while the request runs (or when an interrupt ended it); ``server`` is the name
    of the server that answered.
    """

    values: Mapping[str, Any]
    outputs: tuple[ImageResult | FailedImage, ...] = ()
    server: str | None = None

    @property
    def state(self) -> str:
        if not self.outputs:
            return "pending"
        return "failed" if any(isinstance(item, FailedImage) for item in self.outputs) else "done"


def cell_label(axes: Sequence[Axis], cell: GridCell, output: ImageResult | FailedImage | None = None) -> str:
    """``seed 3 · guidance 4``, plus ``#1`` for the second image of a request made ``n`` at a time."""
    text = " · ".join(axis.caption(cell.values[axis.name]) for axis in axes)
    if output is not None and len(cell.outputs) > 1:
        text += f" #{output.index}"
    return text


@dataclasses.dataclass(frozen=True, repr=False)
class ImageGrid:
    """A sweep's result: ``x`` (and ``y``) axes, ``cells`` row by row (for each Y value, every X value).

    ``grid.images`` are the images made (full resolution), ``grid.failures`` the failed places,
    ``grid.batch`` everything as an :class:`~vomni_nb.results.ImageBatch`, ``grid.cell(seed=3,
    guidance=4)`` one cell. ``saved`` lists the files written by ``save=DIR``; ``interrupted`` says
    Ctrl-C ended the sweep (the cells that finished are kept).
    """

    prompt: str
    x: Axis
    y: Axis | None = None
    cells: tuple[GridCell, ...] = ()
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    servers: tuple[str, ...] = ()
    saved: tuple[str, ...] = ()
    interrupted: bool = False

    @property
    def axes(self) -> tuple[Axis, ...]:
        return (self.x,) if self.y is None else (self.x, self.y)

    @property
    def shape(self) -> tuple[int, int]:
        """(columns, rows): X values by Y values."""
        return len(self.x.values), len(self.y.values) if self.y is not None else 1

    @property
    def outputs(self) -> tuple[ImageResult | FailedImage, ...]:
        return tuple(item for cell in self.cells for item in cell.outputs)

    @property
    def images(self) -> tuple[ImageResult, ...]:
        return tuple(item for item in self.outputs if isinstance(item, ImageResult))

    @property
    def failures(self) -> tuple[FailedImage, ...]:
        return tuple(item for item in self.outputs if isinstance(item, FailedImage))

    @property
    def batch(self) -> ImageBatch:
        return ImageBatch(self.outputs, timings=self.timings)

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self) -> Iterator[GridCell]:
        return iter(self.cells)

    def cell(self, **values: Any) -> GridCell:
        """The cell with these swept values: ``grid.cell(seed=3, guidance=4)``."""
        for cell in self.cells:
            if all(cell.values.get(name) == value for name, value in values.items()):
                return cell
        raise KeyError(f"no cell with {values}; the axes are {', '.join(axis.name for axis in self.axes)}")

    def __repr__(self) -> str:
        columns, rows = self.shape
        names = " × ".join(axis.name for axis in self.axes)
        failed = f", {len(self.failures)} failed" if self.failures else ""
        ended = ", interrupted" if self.interrupted else ""
        return (f"ImageGrid({names}: {columns}x{rows}, {len(self.images)} images{failed}{ended}, "
                f"prompt={short(self.prompt)!r})")

    def save(self, directory: PathLike = ".") -> list[Path]:
        """Save every image into ``directory`` (never overwriting), named by its swept values
        (``image-seed3-guidance4.png``); returns the paths."""
        from vomni_nb._files import IMAGE_EXTENSIONS

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for cell in self.cells:
            stem = "image-" + "-".join(f"{axis.name}{_slug(cell.values[axis.name])}" for axis in self.axes)
            for image in cell.outputs:
                if isinstance(image, ImageResult):
                    suffix = f"-n{image.index}" if len(cell.outputs) > 1 else ""
                    paths.append(image.save(folder / f"{stem}{suffix}{IMAGE_EXTENSIONS.get(image.format, '.img')}"))
        return paths

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return _bundle(self, _final_header(self), {})


def _slug(value: Any) -> str:
    """A swept value as a piece of a file name (``4.0`` -> ``4``, a model id -> its short name)."""
    import re

    if isinstance(value, str):
        value = value.rsplit("/", 1)[-1]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value))


def _figure(grid: ImageGrid, cell: GridCell, figures: dict[int, str], saved: Mapping[int, Path]) -> str:
    from vomni_nb import _embeds
    from vomni_nb._rendering import failed_figure

    if not cell.outputs:
        state = "interrupted" if grid.interrupted else "…"
        return (f"<figure style='display:inline-block;margin:4px'><div style='width:{_embeds.settings.cell_side // 2}px;"
                f"color:#888'>{state}</div><figcaption style='font-size:90%'>"
                f"{html.escape(cell_label(grid.axes, cell))}</figcaption></figure>")
    parts = []
    for output in cell.outputs:
        caption = cell_label(grid.axes, cell, output)
        if isinstance(output, FailedImage):
            parts.append(failed_figure(output, caption))
            continue
        if id(output) not in figures:  # a live view redraws often: each preview is made once
            figures[id(output)] = _embeds.figure(output, side=_embeds.settings.cell_side, caption=caption,
                                                 saved=saved.get(id(output))).html
        parts.append(figures[id(output)])
    return "".join(parts)


def _table(grid: ImageGrid, previews: dict[int, str], saved: Mapping[int, Path]) -> str:
    td = "<td style='text-align:center;vertical-align:top;padding:2px'>"
    if grid.y is None:
        rows = [grid.cells[start:start + COLUMNS] for start in range(0, len(grid.cells), COLUMNS)]
        body = "".join("<tr>" + "".join(td + _figure(grid, cell, previews, saved) + "</td>" for cell in row) + "</tr>"
                       for row in rows)
        return f"<table><caption style='text-align:left'>{html.escape(grid.x.name)} →</caption>{body}</table>"
    columns = len(grid.x.values)
    head = (f"<tr><th style='text-align:left'>{html.escape(grid.y.name)} ↓ · {html.escape(grid.x.name)} →</th>"
            + "".join(f"<th>{html.escape(grid.x.caption(value))}</th>" for value in grid.x.values) + "</tr>")
    body = ""
    for row, value in enumerate(grid.y.values):
        cells = grid.cells[row * columns:(row + 1) * columns]
        body += (f"<tr><th style='text-align:right'>{html.escape(grid.y.caption(value))}</th>"
                 + "".join(td + _figure(grid, cell, previews, saved) + "</td>" for cell in cells) + "</tr>")
    return f"<table>{head}{body}</table>"


def _text(grid: ImageGrid, header: str) -> str:
    lines = [header, repr(grid)]
    for cell in grid.cells:
        label = cell_label(grid.axes, cell)
        if cell.state == "pending":
            lines.append(f"  {label}: {'interrupted' if grid.interrupted else '…'}")
        for output in cell.outputs:
            what = (f"✗ {short(output.message, 120)}" if isinstance(output, FailedImage)
                    else f"{output.size} {output.format}, seed {output.seed}")
            lines.append(f"  {cell_label(grid.axes, cell, output)}: {what}")
    if grid.saved:
        lines.append(f"saved {len(grid.saved)} files, e.g. {grid.saved[0]}")
    return "\n".join(lines)


def _final_header(grid: ImageGrid) -> str:
    done = sum(1 for cell in grid.cells if cell.outputs)
    elapsed = grid.timings.get("total_s")
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    where = f" on {', '.join(grid.servers)}" if grid.servers else ""
    if grid.interrupted:
        return f"✗ interrupted after {done} of {len(grid.cells)} requests{took}{where}; the server aborted the rest"
    failed = f" ({len(grid.failures)} failed)" if grid.failures else ""
    return f"✓ {len(grid.images)} images{failed}{took}{where}"


def _bundle(grid: ImageGrid, header: str, previews: dict[int, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    note = rerun_note(grid.outputs)
    # save() writes the images in order, so the n-th saved path is the n-th image's copy.
    saved = {id(image): Path(path) for image, path in zip(grid.images, grid.saved)} \
        if len(grid.saved) == len(grid.images) else {}
    unrecorded = _unrecorded(grid)
    page = (f"<div style='font-family:monospace;padding:2px 0'>{html.escape(header)}</div>"
            f"{_table(grid, previews, saved)}" + (f"<p><small>{html.escape(note)}</small></p>" if note else "")
            + (f'<div style="color:#a15c00">⚠ {html.escape(unrecorded)}</div>' if unrecorded else ""))
    text = _text(grid, header) + (f"\n{note}" if note else "") + (f"\nwarning: {unrecorded}" if unrecorded else "")
    return {"text/plain": text, "text/html": page}, {"vomni_nb": _record(grid)}


def _unrecorded(grid: ImageGrid) -> str:
    """What the history said of the images it could not record (a full disk...), once, under the grid."""
    notes = [image.stored.note for image in grid.images if image.stored is not None and image.stored.note]
    return f"{len(notes)} not in the history: " + "; ".join(dict.fromkeys(notes)) if notes else ""


def _record(grid: ImageGrid) -> dict[str, Any]:
    items = []
    for cell in grid.cells:
        for output in cell.outputs:
            record = (output_record(output, size=output.size, format=output.format, index=output.index)
                      if isinstance(output, ImageResult) else {**output.provenance.to_record(), "error": output.message})
            items.append({**record, "cell": dict(cell.values), "served_by": cell.server,
                          "history_id": output.history_id})
    return {"kind": "image_grid", "prompt": grid.prompt,
            "axes": [{"name": axis.name, "values": list(axis.values)} for axis in grid.axes],
            "items": items, "saved": list(grid.saved), "interrupted": grid.interrupted,
            "timings": dict(grid.timings)}


def live_bundle(grid: ImageGrid, elapsed: float, previews: dict[int, str]) -> tuple[str, str]:
    """(text, html) of a sweep still running: the same table, pending cells marked, a count and the time."""
    done = sum(1 for cell in grid.cells if cell.outputs)
    where = f" on {', '.join(grid.servers)}" if grid.servers else ""
    header = f"◔ {done}/{len(grid.cells)} requests · {elapsed:.1f} s{where}"
    data, _ = _bundle(grid, header, previews)
    return data["text/plain"], data["text/html"]
