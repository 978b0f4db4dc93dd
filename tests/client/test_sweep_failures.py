"""Issue 7.6 and 7.14: a sweep is never all-or-nothing, and its captions and file names carry what varied."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.plans import PlanDriver, plan_core, reply, tiny_png
from vomni_nb import OmniClient, _plans
from vomni_nb.errors import InsufficientStorageError, PartialBatchError
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.results import FailedImage, ImageBatch, ImageResult


def _captioned(page: str, label: str) -> bool:
    """Whether a figure's caption starts with ``label`` (then, when recorded, its history id)."""
    return re.search(rf"<figcaption[^>]*>{re.escape(label)}( ·|<)", page) is not None


def _image_body() -> dict[str, Any]:
    return {"created": 1, "data": [{"b64_json": base64.b64encode(tiny_png()).decode()}], "metrics": {}}


def _failing_for(bad_guidance: float) -> Any:
    def answer(spec: RequestSpec) -> Any:
        if (spec.json or {}).get("guidance_scale") == bad_guidance:
            return reply(507, {"error": {"message": "out of memory", "type": "x", "param": None, "code": 507}})
        return reply(200, _image_body())
    return answer


def test_a_failed_request_stands_in_its_place_and_the_rest_survive() -> None:
    batch = PlanDriver(_failing_for(4.0)).run(_plans.images(plan_core(), "a fox", seed=3,
                                                            grid={"guidance": [2.0, 4.0, 8.0]}))
    assert isinstance(batch, ImageBatch) and len(batch) == 3
    assert [type(item).__name__ for item in batch] == ["ImageResult", "FailedImage", "ImageResult"]
    failed = batch[1]
    assert isinstance(failed, FailedImage) and isinstance(failed.error, InsufficientStorageError)
    assert failed.seed == 3 and failed.params["guidance_scale"] == 4.0 and failed.prompt == "a fox"
    assert len(batch.ok) == 2 and batch.failures == (failed,)
    assert repr(batch).startswith("ImageBatch(2 images, 1 failed, seeds=[3, 3, 3]")  # made and failed apart
    data, metadata = batch._repr_mimebundle_()
    assert "✗ InsufficientStorageError" in data["text/html"]
    assert metadata["vomni_nb"]["items"][1]["error"].startswith("InsufficientStorageError")


def test_strict_raises_with_the_partial_batch() -> None:
    with pytest.raises(PartialBatchError, match="1 of 3 requests of the sweep failed") as caught:
        PlanDriver(_failing_for(8.0)).run(_plans.images(plan_core(), "a fox", seed=3,
                                                        grid={"guidance": [2.0, 4.0, 8.0]}, strict=True))
    assert isinstance(caught.value.partial, ImageBatch) and len(caught.value.partial.ok) == 2
    assert isinstance(caught.value.errors[0], InsufficientStorageError)


def test_captions_and_file_names_carry_the_swept_values(image_server: Any, tmp_path: Path) -> None:
    with OmniClient(image_server.url) as client:
        grid = client.images("a fox", seed=7, grid={"guidance": [2.0, 4.5], "steps": [2]}, size="32x32")
        data, _ = grid._repr_mimebundle_()
        assert _captioned(data["text/html"], "guidance 2") and _captioned(data["text/html"], "guidance 4.5")
        assert "seed 7" not in data["text/html"]  # a guidance sweep is not captioned by its (shared) seed
        assert sorted(path.name for path in grid.save(tmp_path)) == ["image-guidance2.png", "image-guidance4.5.png"]
        several = client.image("a fox", seed=5, n=3, size="32x32")
        data, _ = several._repr_mimebundle_()
        for index in range(3):
            assert _captioned(data["text/html"], f"seed 5 #{index}")
        assert "only #0 reruns alone" in data["text/html"] and "only #0 reruns alone" in data["text/plain"]
        names = sorted(path.name for path in several.save(tmp_path / "n"))
        assert names == ["image-seed5-n0.png", "image-seed5-n1.png", "image-seed5-n2.png"]


def test_a_real_sweep_keeps_its_images_when_the_server_fails_some(start_sim: Any) -> None:
    flaky = start_sim("Tongyi-MAI/Z-Image-Turbo", "--rate-507", "0.5", "--fault-seed", "3")
    with OmniClient(flaky.url) as client:
        batch = client.images("a fox", seeds=list(range(1, 9)), size="32x32", concurrency=4)
    assert len(batch) == 8 and batch.failures and batch.ok
    assert repr(batch).startswith(f"ImageBatch({len(batch.ok)} images, {len(batch.failures)} failed, ")
    assert [item.seed for item in batch] == list(range(1, 9))  # every place kept, in order
    assert all(isinstance(item, ImageResult) or isinstance(item.error, InsufficientStorageError) for item in batch)


def test_a_failed_cell_is_recorded_as_a_failure_beside_the_others(start_sim: Any, tmp_path: Path) -> None:
    # The server refuses the larger size itself (its pixel limit), so the failure is a real answer.
    from tests.support.sims import IMAGE_MODEL
    from vomni_nb._history import HistoryStore

    sim = start_sim(IMAGE_MODEL, "--max-generated-image-size", "4096")
    store = HistoryStore(tmp_path / "history.sqlite3")
    with OmniClient(sim.url, history=store, max_retries=0) as client:
        batch = client.images("a heron", seed=4, grid={"size": ["32x32", "128x128"]})
    assert [type(item).__name__ for item in batch] == ["ImageResult", "FailedImage"]
    assert batch[0].history_id is not None and batch[1].history_id is None
    entries = sorted(store.search("heron", limit=None), key=lambda entry: entry.status, reverse=True)
    assert [entry.status for entry in entries] == ["ok", "error"]  # the cells ran at once: either may be first
    assert entries[0].id == batch[0].history_id
    assert entries[1].error is not None and entries[1].error.startswith("BadRequestError: 400")
    assert entries[1].record["arguments"]["size"] == "128x128"
