"""Sweeps and X/Y grids: ``vomni_nb.sweep(prompt, x=("seed", [1, 2, 3]), y=("guidance", [2, 4, 8]))``,
the twin of ``%%omni_image --seed 1..3 --guidance 2,4,8``.

Rules:

1. An axis is one of :data:`AXES` with its values; ``x`` is the first, ``y`` the second (the magic
   takes them in the order the flags appear on the line). Every value is checked, and every server
   found, before the first request; a sweep has at most :data:`MAX_CELLS` requests.
2. A seed that is neither swept nor given is chosen once for the whole grid, so cells differ only in
   what was swept (and the seed is recorded).
3. Requests run concurrently, ``concurrency`` at a time on each server, and where several healthy
   servers serve the model (replicas, started or attached), over all of them: each server's workers
   take the next cell from one queue, so a faster server takes more. A ``--model``/``--server`` axis
   sends each column to its own servers.
4. A failed request leaves a :class:`~vomni_nb.results.FailedImage` in its cell and the others go on
   (``strict=True`` raises :class:`~vomni_nb.errors.PartialBatchError` with the grid at the end).
5. While it runs, one live output shows the grid filling in, with a count and the elapsed time
   (throttled: previews are re-sent at most every ``LIVE_INTERVAL_S``). Ctrl-C cancels every request
   (the servers abort them) and raises :class:`~vomni_nb.errors.Interrupted` with the finished part
   as ``.partial``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vomni_nb import _advice
from vomni_nb._twins import Log, Status, client_for, end_line, run_waiting, wait_line
from vomni_nb.errors import APIError, Interrupted, InvalidRequestError, PartialBatchError, WrongServerError
from vomni_nb.generation import check_image_options
from vomni_nb.grids import Axis, GridCell, ImageGrid, live_bundle
from vomni_nb.protocol.validate import ImageFormat, ImageRoute, check_prompt
from vomni_nb.routing import Target, is_wrong_server_answer, replicas, resolve, tasks_for, wrong_server

if TYPE_CHECKING:
    from vomni_nb._files import PathLike
    from vomni_nb.results import FailedImage, ImageResult

__all__ = ["AXES", "MAX_CELLS", "LIVE_INTERVAL_S", "parse_values", "make_axis", "sweep"]

AXES = ("seed", "guidance", "steps", "size", "model", "server")
MAX_CELLS = 256
LIVE_INTERVAL_S = 0.5
_RANGE = re.compile(r"^\s*(-?[\d.]+)\s*\.\.\s*(-?[\d.]+)\s*(?::\s*([\d.]+)\s*)?$")
_NUMBERS = {"seed": int, "steps": int, "guidance": float}


def parse_values(name: str, text: str) -> list[Any]:
    """``"1,4,9"`` or ``"1..8"`` (``"2..8:2"`` with a step) as the values of the setting ``name``."""
    kind = _NUMBERS.get(name)
    if kind is None and ".." in text:
        raise InvalidRequestError(f"--{name} takes a list (a,b,c), not a range; got {text!r}.")
    found = _RANGE.match(text)
    if found is None and ".." in text:
        raise InvalidRequestError(f"--{name} range {text!r}: write START..STOP or START..STOP:STEP.")
    if found is not None and kind is not None:
        try:
            start, stop = kind(found.group(1)), kind(found.group(2))
            step = kind(found.group(3)) if found.group(3) else kind(1)
        except ValueError:
            raise InvalidRequestError(f"--{name} range {text!r}: its ends and step must be "
                                      f"{'whole numbers' if kind is int else 'numbers'}.") from None
        if step <= 0 or stop < start:
            raise InvalidRequestError(f"--{name} range {text!r} is empty: write START..STOP with START <= STOP.")
        count = int((stop - start) / step + 1e-9) + 1
        if count > MAX_CELLS:
            raise InvalidRequestError(f"--{name} {text!r} is {count} values; a sweep has at most {MAX_CELLS} requests.")
        return [kind(round(start + i * step, 10)) if kind is float else start + i * step for i in range(count)]
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise InvalidRequestError(f"--{name} {text!r} has an empty value between its commas.")
    if kind is None:
        return items
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise InvalidRequestError(f"--{name} takes {'whole numbers' if kind is int else 'numbers'}; got {text!r}.") \
            from None


def make_axis(name: str, values: Sequence[Any]) -> Axis:
    """An :class:`Axis` with every value checked (the checks of a single image)."""
    if name not in AXES:
        raise InvalidRequestError(f"{name!r} cannot be swept; the axes are {', '.join(AXES)}.")
    values = list(values)
    if not values:
        raise InvalidRequestError(f"the {name} axis has no values.")
    if len({repr(value) for value in values}) < len(values):
        raise InvalidRequestError(f"the {name} axis repeats a value: {values!r}.")
    if name in ("seed", "guidance", "steps", "size"):
        checked = [check_image_options(**{name: value})[name] for value in values]
        return Axis(name, tuple(checked))
    if not all(isinstance(value, str) or hasattr(value, "url") for value in values):
        raise InvalidRequestError(f"the {name} axis takes names (or URLs); got {values!r}.")
    return Axis(name, tuple(values))


@dataclasses.dataclass(frozen=True)
class _Job:
    values: Mapping[str, Any]
    options: Mapping[str, Any]
    pool: int


def _pools(axes: Sequence[Axis], model: str | None, server: Any) -> tuple[dict[Any, int], list[Target]]:
    """The targets of the sweep: one per value of a model/server axis, else one; value -> target index."""
    picked = next((axis for axis in axes if axis.name in ("model", "server")), None)
    if picked is None:
        return {None: 0}, [resolve("image", model=model, server=server)]
    if (model if picked.name == "model" else server) is not None:
        raise InvalidRequestError(f"{picked.name} is swept: give its values on the axis only.")
    targets = [resolve("image", **{"model": model, "server": server, picked.name: value}) for value in picked.values]
    return {value: index for index, value in enumerate(picked.values)}, targets


def _jobs(axes: Sequence[Axis], options: Mapping[str, Any], pool_of: Mapping[Any, int]) -> list[_Job]:
    rows = axes[1].values if len(axes) > 1 else (None,)
    jobs = []
    for y_value, x_value in itertools.product(rows, axes[0].values):
        values = {axes[0].name: x_value, **({axes[1].name: y_value} if len(axes) > 1 else {})}
        cell = {**options, **{name: value for name, value in values.items() if name not in ("model", "server")}}
        routed = next((value for name, value in values.items() if name in ("model", "server")), None)
        jobs.append(_Job(values, cell, pool_of[routed]))
    return jobs


def _name(server: Any) -> str:
    return server if isinstance(server, str) else str(server.name)


async def _run(prompt: str, jobs: Sequence[_Job], targets: Sequence[Target], servers: Sequence[Sequence[Any]],
               concurrency: int, timeout: float | None, cells: list[GridCell], log: Log) -> None:
    from vomni_nb._plans import failed_image

    queues: list[asyncio.Queue[int]] = [asyncio.Queue() for _ in targets]
    for index, job in enumerate(jobs):
        queues[job.pool].put_nowait(index)

    async def worker(queue: asyncio.Queue[int], client: Any, target: Target, name: str) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            job = jobs[index]
            outputs: tuple[ImageResult | FailedImage, ...]
            try:
                made = await client.image(prompt, **job.options)
                outputs = tuple(made.images) if hasattr(made, "images") else (made,)
            except (APIError, WrongServerError) as exc:
                error: Exception = exc
                if isinstance(exc, WrongServerError) or (tasks_for(target.model) is None
                                                         and is_wrong_server_answer(exc)):
                    error = wrong_server("image", target, exc)
                outputs = (failed_image(error, prompt, job.options, server_url=client.base_url, model=client.model),)
            cells[index] = dataclasses.replace(cells[index], outputs=outputs, server=name)

    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for pool, target in enumerate(targets):
            for server in servers[pool]:
                client = await stack.enter_async_context(client_for(server, target, timeout, log=log))
                workers += [worker(queues[pool], client, target, _name(server)) for _ in range(concurrency)]
        await asyncio.gather(*workers)


def sweep(
    prompt: str,
    *,
    x: tuple[str, Sequence[Any]],
    y: tuple[str, Sequence[Any]] | None = None,
    model: str | None = None,
    server: Any = None,
    size: str | tuple[int, int] | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    seed: int | None = None,
    n: int = 1,
    negative: str | None = None,
    format: ImageFormat = "png",
    via: ImageRoute = "images",
    concurrency: int = 4,
    strict: bool = False,
    save: PathLike | None = None,
    log: Log = True,
    timeout: float | None = None,
    status: Status = None,
) -> ImageGrid:
    """A grid of images: ``x`` (and ``y``) name a setting and its values, every other argument is
    :func:`vomni_nb.image`'s, for every cell.

    ``x=("seed", range(1, 9))`` is a labelled row of 8; ``x=("seed", [1, 2]), y=("guidance", [2, 4, 8])``
    an X/Y plot; ``x=("model", ["A", "B"])`` a side-by-side comparison of two servers' models. The axes are
    seed, guidance, steps, size, model and server. ``concurrency`` requests at a time per server, spread
    over every healthy replica of the model. A failed request stands in its cell (``strict=True``:
    PartialBatchError with the grid); ``save`` writes every image into that folder, named by its cell.
    """
    check_prompt(prompt)
    axes = [make_axis(*x)] + ([make_axis(*y)] if y is not None else [])
    if len(axes) == 2 and axes[0].name == axes[1].name:
        raise InvalidRequestError(f"x and y both sweep {axes[0].name}: sweep two different settings.")
    if {"model", "server"} <= {axis.name for axis in axes}:
        raise InvalidRequestError("Sweep --model or --server, not both: each picks the servers.")
    fixed = {"size": size, "steps": steps, "guidance": guidance, "seed": seed}
    for axis in axes:
        if fixed.get(axis.name) is not None:
            raise InvalidRequestError(f"{axis.name} is swept: give its values on the axis only.")
    total = len(axes[0].values) * (len(axes[1].values) if len(axes) > 1 else 1)
    if total > MAX_CELLS:
        raise InvalidRequestError(f"{total} requests: a sweep has at most {MAX_CELLS}.")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidRequestError(f"concurrency must be a whole number of at least 1; got {concurrency!r}.")
    options = check_image_options(**fixed, n=n, format=format, via=via)
    if negative is not None:
        options["negative"] = negative
    if "seed" not in options and all(axis.name != "seed" for axis in axes):
        from vomni_nb._plans import new_seed

        options["seed"] = new_seed()
    pool_of, targets = _pools(axes, model, server)
    jobs = _jobs(axes, options, pool_of)
    servers = [replicas(target) for target in targets]
    cells = [GridCell(job.values) for job in jobs]
    names = tuple(dict.fromkeys(_name(item) for group in servers for item in group))
    return _wait(prompt, axes, jobs, targets, servers, cells, names, concurrency, timeout, status, log, save, strict)


def _snapshot(prompt: str, axes: Sequence[Axis], cells: Sequence[GridCell], names: tuple[str, ...],
              elapsed: float, interrupted: bool = False) -> ImageGrid:
    return ImageGrid(prompt, axes[0], axes[1] if len(axes) > 1 else None, tuple(cells), {"total_s": elapsed}, names,
                     interrupted=interrupted)


def _wait(prompt: str, axes: Sequence[Axis], jobs: Sequence[_Job], targets: Sequence[Target],
          servers: Sequence[Sequence[Any]], cells: list[GridCell], names: tuple[str, ...], concurrency: int,
          timeout: float | None, status: Status, log: Log, save: Any, strict: bool) -> ImageGrid:
    line, owned = wait_line(status)
    previews: dict[int, str] = {}
    shown = {"at": float("-inf"), "done": -1}
    started = time.monotonic()
    where = ", ".join(dict.fromkeys(target.name for target in targets))

    def tick(elapsed: float) -> None:
        done = sum(1 for cell in cells if cell.outputs)
        now = time.monotonic()
        if line is None or elapsed < line.delay or (done == shown["done"] and now - shown["at"] < 1.0) \
                or now - shown["at"] < LIVE_INTERVAL_S:
            return
        line.update(*live_bundle(_snapshot(prompt, axes, cells, names, elapsed), elapsed, previews), force=True)
        shown.update(at=now, done=done)

    try:
        run_waiting(lambda: _run(prompt, jobs, targets, servers, concurrency, timeout, cells, log), tick=tick)
    except KeyboardInterrupt as exc:
        partial = _snapshot(prompt, axes, cells, names, time.monotonic() - started, interrupted=True)
        if owned and line is not None:
            end_line(line, f"a sweep of {len(cells)} requests", where, time.monotonic() - started, ok=False)
        done = sum(1 for cell in cells if cell.outputs)
        raise Interrupted(_advice.interrupted(f"the server aborted the rest after {done} of {len(cells)} requests"),
                          url=targets[0].url, partial=partial) from exc
    grid = _snapshot(prompt, axes, cells, names, time.monotonic() - started)
    if save is not None:
        grid = dataclasses.replace(grid, saved=tuple(str(path) for path in grid.save(save)))
    if owned and line is not None:
        failed = f", {len(grid.failures)} failed" if grid.failures else ""
        end_line(line, f"a sweep of {len(cells)} requests{failed}", where, time.monotonic() - started, ok=True)
    if strict and grid.failures:
        raise PartialBatchError(f"{len(grid.failures)} of {len(jobs)} requests of the sweep failed (first: "
                                f"{grid.failures[0].message}); the rest are in .partial.", partial=grid,
                                errors=[failed.error for failed in grid.failures])
    return grid
