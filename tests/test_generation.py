"""The image twins from plain Python: no IPython, a real simulator, files saved and never overwritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import vomni_nb
from tests.support.magics import generations
from vomni_nb.errors import InvalidRequestError
from vomni_nb.results import ImageBatch, ImageResult


def test_image_twin_makes_saves_and_returns(image_server: Any, tmp_path: Path) -> None:
    first = vomni_nb.image("a kite", server=image_server.url, size="32x32", seed=5, save=tmp_path, status=False)
    again = vomni_nb.image("a kite", server=image_server.url, size="32x32", seed=5, save=tmp_path)
    assert isinstance(first, ImageResult) and first.seed == 5 and first.data == again.data
    assert sorted(path.name for path in tmp_path.iterdir()) == ["image-5-1.png", "image-5.png"]  # never overwritten
    batch = vomni_nb.image("a kite", server=image_server.url, size="32x32", seed=6, n=3, format="jpeg")
    assert isinstance(batch, ImageBatch) and len(batch) == 3 and batch[0].format == "jpeg"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"prompt": " "}, "prompt is empty"),
    ({"seed": [1, 2]}, "seed takes one value here"),
    ({"steps": range(1, 3)}, "steps takes one value here"),
    ({"size": "1x"}, "size must look like"),
    ({"n": 0}, "n must be from 1 to 10"),
    ({"format": "gif"}, "output format"),
    ({"via": "fax"}, "via must be"),
])
def test_bad_arguments_fail_before_any_request(image_server: Any, kwargs: dict[str, Any], reason: str) -> None:
    before = generations(image_server)
    arguments = {"prompt": "a kite", **kwargs}
    with pytest.raises(InvalidRequestError, match=reason):
        vomni_nb.image(arguments.pop("prompt"), server=image_server.url, **arguments)
    assert generations(image_server) == before


def test_the_twin_is_exported_lazily() -> None:
    assert "image" in vomni_nb.__all__ and vomni_nb.image.__module__ == "vomni_nb.generation"


def test_every_image_is_recorded_unless_log_is_false(image_server: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from vomni_nb._history import HistoryStore

    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history.sqlite3"))
    kept = vomni_nb.image("a kite", server=image_server.url, size="32x32", seed=1)
    assert kept.history_id is not None  # recorded by the client, before the twin returned it
    assert vomni_nb.image("a kite", server=image_server.url, size="32x32", seed=2, log=False).history_id is None
    grid = vomni_nb.sweep("a kite", x=("seed", [3, 4]), server=image_server.url, size="32x32", log=False)
    assert [image.history_id for image in grid.images] == [None, None]
    logged = vomni_nb.sweep("a kite", x=("seed", [5, 6]), server=image_server.url, size="32x32")
    assert all(image.history_id is not None for image in logged.images)
    seeds = sorted(entry.seed for entry in HistoryStore(tmp_path / "history.sqlite3").search(None, limit=10))
    assert seeds == [1, 5, 6]
