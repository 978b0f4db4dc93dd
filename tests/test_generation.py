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


def test_no_log_turns_the_history_off_for_the_call_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from vomni_nb._history import store
    from vomni_nb._twins import recording

    monkeypatch.delenv("VOMNI_HISTORY", raising=False)
    assert store.history_enabled()
    with recording(False):
        assert not store.history_enabled()
    assert store.history_enabled()
    with recording(True):
        assert store.history_enabled()
    store.set_history_enabled(False)  # switched off by the user: a call with log=False leaves it off
    try:
        with recording(False):
            pass
        assert not store.history_enabled()
    finally:
        store.set_history_enabled(True)
