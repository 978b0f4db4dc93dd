"""Sweeps from plain Python: value parsing, axes, and ``vomni_nb.sweep`` against real simulators."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import vomni_nb
from tests.support.magics import generations
from vomni_nb.errors import InvalidRequestError, PartialBatchError
from vomni_nb.grids import ImageGrid
from vomni_nb.sweeps import make_axis, parse_values


@pytest.mark.parametrize(("name", "text", "values"), [
    ("seed", "1,4,9", [1, 4, 9]),
    ("seed", "1..4", [1, 2, 3, 4]),
    ("seed", "0..8:4", [0, 4, 8]),
    ("guidance", "2..4", [2.0, 3.0, 4.0]),
    ("guidance", "1..2:0.5", [1.0, 1.5, 2.0]),
    ("guidance", "2.5,7", [2.5, 7.0]),
    ("size", "512x512, 768x512", ["512x512", "768x512"]),
    ("model", "A/b,C/d", ["A/b", "C/d"]),
])
def test_parse_values(name: str, text: str, values: list[Any]) -> None:
    assert parse_values(name, text) == values


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("seed", "4..1", "is empty"),
    ("seed", "1..2.5", "whole numbers"),
    ("seed", "1..3:0", "is empty"),
    ("seed", "a,b", "whole numbers"),
    ("size", "1x1..2x2", "not a range"),
    ("seed", "1..", "START..STOP"),
    ("seed", "0..1000", "at most 256"),
])
def test_parse_values_refuses(name: str, text: str, reason: str) -> None:
    with pytest.raises(InvalidRequestError, match=reason):
        parse_values(name, text)


def test_axes_check_their_values() -> None:
    assert make_axis("size", ["64X32"]).values == ("64x32",)
    for name, values, reason in [("steps", [0], "steps must be from 1"), ("colour", [1], "cannot be swept"),
                                 ("seed", [], "no values"), ("model", [3], "takes names")]:
        with pytest.raises(InvalidRequestError, match=reason):
            make_axis(name, values)


def test_sweep_twin_takes_its_axes_in_the_order_given(image_server: Any, tmp_path: Path) -> None:
    grid = vomni_nb.sweep("a kite", x=("guidance", [2, 4]), y=("steps", [1, 2, 3]), server=image_server.url,
                          size="32x32", seed=11, save=tmp_path, status=False)
    assert isinstance(grid, ImageGrid) and grid.shape == (2, 3)
    assert [(image.params["guidance_scale"], image.params["num_inference_steps"]) for image in grid.images] == [
        (2.0, 1), (4.0, 1), (2.0, 2), (4.0, 2), (2.0, 3), (4.0, 3)]
    assert {image.seed for image in grid.images} == {11}
    assert len(list(tmp_path.iterdir())) == 6
    shared = vomni_nb.sweep("a kite", x=("steps", [1, 2]), server=image_server.url, size="32x32")
    assert len({image.seed for image in shared.images}) == 1  # one seed chosen for the whole grid, and recorded
    assert shared.images[0].seed is not None


def test_bad_sweeps_fail_before_any_request(image_server: Any) -> None:
    before = generations(image_server)
    for kwargs, reason in [({"x": ("seed", [1, 2]), "seed": 3}, "seed is swept"),
                           ({"x": ("seed", [1]), "y": ("seed", [2])}, "both sweep seed"),
                           ({"x": ("seed", [1]), "concurrency": 0}, "concurrency must be"),
                           ({"x": ("seed", list(range(20))), "y": ("steps", list(range(1, 20)))}, "at most 256"),
                           ({"x": ("model", ["A", "B"]), "model": "A"}, "model is swept")]:
        with pytest.raises(InvalidRequestError, match=reason):
            vomni_nb.sweep("a kite", server=image_server.url, **kwargs)
    assert generations(image_server) == before


def test_strict_raises_with_the_grid(start_sim: Any) -> None:
    flaky = start_sim("Tongyi-MAI/Z-Image-Turbo", "--rate-507", "0.5", "--fault-seed", "3")
    with pytest.raises(PartialBatchError) as caught:
        vomni_nb.sweep("a kite", x=("seed", list(range(1, 9))), server=flaky.url, size="32x32", strict=True)
    partial = caught.value.partial
    assert isinstance(partial, ImageGrid) and partial.images and len(partial.failures) == len(caught.value.errors)


def test_the_live_grid_fills_in_throttled_and_counts(start_sim: Any) -> None:
    from vomni_nb.display import WaitLine

    class Recorder:
        def __init__(self) -> None:
            self.shown: list[tuple[float, str]] = []

        def show(self, output: Any) -> None:
            self.shown.append((time.monotonic(), output[0]["text/plain"]))

        update = show

    slow = start_sim("Tongyi-MAI/Z-Image-Turbo", "--latency", "0.4")
    recorder = Recorder()
    line = WaitLine(delay=0.0, live=True, handle=recorder)  # type: ignore[arg-type]
    grid = vomni_nb.sweep("a kite", x=("seed", list(range(1, 9))), server=slow.url, size="32x32", concurrency=2,
                          status=line)
    assert len(grid.images) == 8
    headers = [text.splitlines()[0] for _, text in recorder.shown]
    assert headers and all(header.startswith("◔ ") and "/8 requests · " in header for header in headers)
    counts = [int(header.split()[1].split("/")[0]) for header in headers]
    assert counts == sorted(counts)
    gaps = [later - earlier for (earlier, _), (later, _) in zip(recorder.shown, recorder.shown[1:])]
    assert all(gap >= 0.5 for gap in gaps), gaps  # throttled: previews are re-sent at most twice a second
    assert not line.ended  # the caller (a magic) puts the result in its place
