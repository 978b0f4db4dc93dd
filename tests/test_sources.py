"""Input media for the twins: checked before anything is sent, then fetched (a URL downloaded from a real
loopback HTTP server, a data: URL decoded, a history id read from the history store)."""

from __future__ import annotations

import base64
import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vomni_nb._sources import check_source, check_sources, fetch_source, is_history_id, is_url
from vomni_nb.errors import InvalidRequestError

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@contextlib.contextmanager
def _serving(folder: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``folder`` (the media a URL points at)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_paths_bytes_and_results_are_checked_and_kept(tmp_path: Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)

    class Result:
        data = PNG

    result = Result()
    assert check_source(str(picture), kind="image") == picture and check_source(PNG, kind="image") == PNG
    assert check_source(result, kind="image") is result
    assert check_sources(None, kind="image", name="images") == [] and len(check_sources([PNG, PNG], kind="image",
                                                                                        name="images")) == 2
    assert check_sources(str(picture), kind="image", name="images") == [picture]  # one path, not its letters
    assert fetch_source(picture, kind="image") == picture


@pytest.mark.parametrize(("source", "reason"), [
    ("", "is empty"), (b"", "is empty"), ("nowhere.png", "no such file"), (3.5, "cannot use float as image input"),
])
def test_bad_sources_are_refused(source: Any, reason: str) -> None:
    with pytest.raises(InvalidRequestError, match=reason):
        check_source(source, kind="image")


def test_urls_are_downloaded_and_data_urls_decoded(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(PNG)
    with _serving(tmp_path) as root:
        assert is_url(f"{root}/p.png") and check_source(f"{root}/p.png", kind="image") == f"{root}/p.png"
        assert fetch_source(f"{root}/p.png", kind="image") == PNG
        with pytest.raises(InvalidRequestError, match="HTTP 404. Check the URL"):
            fetch_source(f"{root}/missing.png", kind="image")
    assert fetch_source("data:image/png;base64," + base64.b64encode(PNG).decode(), kind="image") == PNG
    with pytest.raises(InvalidRequestError, match="cannot be decoded"):
        fetch_source("data:image/png;base64,@@@", kind="image")


def test_a_history_id_names_the_stored_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.history import make_record
    from vomni_nb._history import HistoryStore

    assert is_history_id("#12") and is_history_id("#12:1") and is_history_id("12") and is_history_id(12)
    assert not is_history_id("12.png") and not is_history_id("./12") and not is_history_id(True)
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))  # the default store: the test's own
    entry = HistoryStore(tmp_path / "history").record(make_record(), files=[PNG], embed_recipe=False)
    assert entry is not None and check_source(f"#{entry.id}", kind="image") == f"#{entry.id}"
    assert check_source(entry.id, kind="image") == entry.id
    for source in (f"#{entry.id}", str(entry.id), entry.id):
        assert Path(fetch_source(source, kind="image")).read_bytes() == PNG
    with pytest.raises(InvalidRequestError, match="no audio"):
        fetch_source(f"#{entry.id}", kind="audio")
    with pytest.raises(InvalidRequestError, match="999"):
        fetch_source("#999", kind="image")
