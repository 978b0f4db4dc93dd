"""Sweeps and X/Y grids from %%omni_image, in an in-process shell against real simulators."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from tests.support.magics import generations, last_output
from tests.support.sims import IMAGE_MODEL
from vomni_nb.grids import ImageGrid
from vomni_nb.results import FailedImage, ImageResult
from vomni_nb.server import default_manager


def _sweep(shell: Any, line: str, cell: str = "a lighthouse at dusk") -> tuple[ImageGrid, Any]:
    with capture_output() as captured:
        shell.run_cell_magic("omni_image", f"{line} --size 32x32 --out grid", cell)
    return shell.user_ns["grid"], last_output(captured)


def _captioned(page: str, label: str) -> bool:
    """Whether a figure's caption starts with ``label`` (then its history id and where the full file is)."""
    return re.search(rf"<figcaption[^>]*>{re.escape(label)}( ·|<)", page) is not None


def _posts(sim: Any) -> int:
    return sim.log().count("POST /v1/images/generations")


def test_a_seed_range_is_an_eight_cell_labelled_grid(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    grid, output = _sweep(magic_shell, "--seed 1..8")
    assert isinstance(grid, ImageGrid) and grid.shape == (8, 1) and grid.y is None
    assert [image.seed for image in grid.images] == list(range(1, 9))
    page = output.data["text/html"]
    assert len(re.findall(r"<img ", page)) == 8 and page.count('alt="a lighthouse at dusk"') == 8
    for seed in range(1, 9):
        assert _captioned(page, f"seed {seed}")
    assert "seed →" in page
    assert set(output.data) == {"text/plain", "text/html"} and "ImageGrid(seed: 8x1, 8 images" in output.data["text/plain"]
    record = output.metadata["vomni_nb"]
    assert record["kind"] == "image_grid" and record["axes"] == [{"name": "seed", "values": list(range(1, 9))}]
    assert [item["cell"] for item in record["items"]] == [{"seed": seed} for seed in range(1, 9)]
    assert all(item["model"] == IMAGE_MODEL and item["schema"] == "vomni_nb/1" for item in record["items"])


def test_two_varying_flags_are_an_xy_plot_in_line_order(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    grid, output = _sweep(magic_shell, "--seed 1..4 --guidance 2,4,8")
    assert grid.shape == (4, 3) and grid.x.name == "seed" and grid.y is not None and grid.y.name == "guidance"
    assert len(grid.images) == 12 and grid.cell(seed=3, guidance=8.0).outputs[0].params["guidance_scale"] == 8.0
    page = output.data["text/html"]
    assert "guidance ↓ · seed →" in page
    assert [html.unescape(h) for h in re.findall(r"<th>([^<]+)</th>", page)] == ["seed 1", "seed 2", "seed 3", "seed 4"]
    assert re.findall(r"<th style='text-align:right'>([^<]+)</th>", page) == ["guidance 2", "guidance 4", "guidance 8"]
    flipped, _ = _sweep(magic_shell, "--guidance 2,4,8 --seed 1..4")  # X is the first varying flag on the line
    assert flipped.shape == (3, 4) and flipped.x.name == "guidance"


def test_model_list_compares_two_servers_side_by_side(magic_shell: Any, image_server: Any, start_sim: Any) -> None:
    other = start_sim("Qwen/Qwen-Image")
    default_manager().attach(image_server.url)
    default_manager().attach(other.url)
    grid, output = _sweep(magic_shell, f"--model {IMAGE_MODEL},Qwen/Qwen-Image --seed 5")
    assert grid.shape == (2, 1) and grid.x.name == "model"
    assert [image.model for image in grid.images] == [IMAGE_MODEL, "Qwen/Qwen-Image"]
    assert [image.server_url for image in grid.images] == [image_server.url, other.url]
    assert [image.seed for image in grid.images] == [5, 5]
    page = output.data["text/html"]
    assert _captioned(page, "model Z-Image-Turbo") and _captioned(page, "model Qwen-Image")


def test_a_sweep_spreads_over_every_replica(magic_shell: Any, image_server: Any, start_sim: Any) -> None:
    replica = start_sim(IMAGE_MODEL, "--latency", "0.2")
    slow_first = start_sim(IMAGE_MODEL, "--latency", "0.2")
    default_manager().attach(replica.url)
    default_manager().attach(slow_first.url)
    grid, output = _sweep(magic_shell, "--seed 1..16 --concurrency 2")
    assert len(grid.images) == 16 and not grid.failures
    counts = _posts(replica), _posts(slow_first)
    assert sum(counts) == 16 and min(counts) >= 4, counts  # both served a fair share
    served = {item["served_by"] for item in output.metadata["vomni_nb"]["items"]}
    assert len(served) == 2


def test_a_failed_cell_shows_its_error_in_place_and_the_others_survive(magic_shell: Any, start_sim: Any) -> None:
    flaky = start_sim(IMAGE_MODEL, "--rate-507", "0.5", "--fault-seed", "3")
    default_manager().attach(flaky.url)
    grid, output = _sweep(magic_shell, "--seed 1..8")
    assert grid.failures and grid.images and len(grid.outputs) == 8
    failed = grid.failures[0]
    assert isinstance(failed, FailedImage) and "InsufficientStorageError" in failed.message
    page = output.data["text/html"]
    assert page.count("✗ InsufficientStorageError") == len(grid.failures)
    assert page.count("<img ") == len(grid.images)
    assert f"({len(grid.failures)} failed)" in output.data["text/plain"]


def test_n_images_per_cell_are_numbered_with_the_rerun_note(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    grid, output = _sweep(magic_shell, "--guidance 2,4 --n 2 --seed 9")
    assert [len(cell.outputs) for cell in grid] == [2, 2]
    page = output.data["text/html"]
    assert _captioned(page, "guidance 2 #0") and _captioned(page, "guidance 4 #1")
    assert "only #0 reruns alone" in page


def test_saved_files_are_named_by_their_cell_and_linked(magic_shell: Any, image_server: Any, tmp_path: Path) -> None:
    default_manager().attach(image_server.url)
    grid, output = _sweep(magic_shell, f"--seed 1,2 --steps 2,3 --save {tmp_path}/out")
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert names == ["image-seed1-steps2.png", "image-seed1-steps3.png", "image-seed2-steps2.png",
                     "image-seed2-steps3.png"]
    assert len(grid.saved) == 4 and "saved 4 files" in output.data["text/plain"]
    assert isinstance(grid.images[0], ImageResult) and len(grid.images[0].data) > 0  # full resolution kept


BAD_SWEEPS = [
    ("--seed 1..4 --guidance 2,4 --steps 1,2", "3 varying flags \\(--seed, --guidance, --steps\\)"),
    ("--seed 8..1", "is empty"),
    ("--seed 1..9999", "at most 256"),
    ("--seed 1..20 --guidance 1..20", "400 requests: a sweep has at most 256"),
    ("--guidance 2,40", "guidance must be from 0"),
    ("--size 64x64,big", "size must look like"),
    ("--size 64x64..128x128", "takes a list"),
    ("--steps 1,,2", "empty value"),
    ("--seed 1,1", "repeats a value"),
    ("--seed 1..4 --concurrency 0", "at least 1"),
    ("--model A,B --server X,Y", "--model or --server, not both"),
    ("--model Nope/Model-1,Nope/Model-2", "no server serves 'Nope/Model-1'"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_SWEEPS, ids=[line for line, _ in BAD_SWEEPS])
def test_bad_sweeps_fail_before_any_request(magic_shell: Any, image_server: Any, line: str, reason: str) -> None:
    from vomni_nb.errors import ServerManagerError

    default_manager().attach(image_server.url)
    before = generations(image_server)
    with pytest.raises((UsageError, ServerManagerError), match=reason):
        magic_shell.run_cell_magic("omni_image", line, "a cat")
    assert generations(image_server) == before
