"""The Studio's buttons at the wrong moment, its faults and its history-off mode, in this process: an IPython
shell captures what the Studio displays, the widget is a real anywidget whose messages arrive as a front
end's comm message would (``Widget._handle_msg``), Generate runs on an event loop of this thread, and the
image servers are real vomni-sim processes.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from PIL import Image

from vomni_nb import HistoryStore
from vomni_nb.errors import InvalidRequestError, VomniError
from vomni_nb.server import ServerManager, set_default_manager
from vomni_nb.widgets import Studio
from vomni_nb.widgets._studio_keep import jpeg_preview, load_strip
from tests.support.sims import IMAGE_MODEL, SimHandle, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def click(widget: Any, content: Any) -> None:
    """A message from the widget's front end (``model.send(content)``), as the comm delivers it."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ServerManager]:
    InteractiveShell.instance()  # display() needs a shell; capture_output() records what it publishes
    manager = ServerManager(registry_dir=tmp_path / "registry", log_dir=tmp_path / "logs", register_atexit=False)
    yield manager
    manager.shutdown(grace=2.0)


def test_history_off_two_servers_and_clicks_at_the_wrong_moment(manager: ServerManager, image_server: SimHandle,
                                                                 start_sim: Any, tmp_path: Path) -> None:
    first = manager.attach(image_server.url, name="first")
    with set_default_manager(manager):
        studio = Studio("a red kite", size="640x384", seed=5, count=2, server=first, store=False,
                        save_dir=tmp_path / "saved", live=True)
    assert studio.manager is manager
    with capture_output() as shown:
        studio._ipython_display_()
        studio._ipython_display_()  # displayed twice: one widget, two views of it
    assert [o.data[WIDGET_MIME]["model_id"] for o in shown.outputs] == [studio._widget.model_id] * 2
    widget = studio._widget
    assert widget.sizes[0] == ["640x384", "640 × 384"]  # a size the menu lacks is offered first, not lost
    assert widget.strip == [] and widget.history_note == "history is off: Pin or Save an image to keep it"

    async def twice() -> list[Any]:
        task = studio.generate()
        with pytest.raises(InvalidRequestError, match="already generating: Cancel it first"):
            studio.generate(prompt="another")
        return await task

    images = asyncio.run(twice())
    assert [image.seed for image in images] == [5, 6] and studio.results == tuple(images)
    assert [item["entry_id"] for item in widget.results] == [None, None] and widget.strip == []
    assert studio.status.startswith("done: 2 images in")

    # Pin the older one by its key: its own bundle below, with no history id to claim.
    with capture_output() as pinned:
        click(widget, {"type": "pin", "key": "r1"})
    (output,) = pinned.outputs
    assert "<img" in output.data["text/html"] and "history_id" not in output.metadata["vomni_nb"]
    click(widget, {"type": "pin", "key": "r9"})  # a stale page: a result this Studio never made
    assert widget.status["state"] == "error" and widget.status["text"] == "No result 'r9' in this Studio."
    click(widget, {"type": "save", "key": "r2"})
    saved = Path(widget.history_note.removeprefix("saved "))
    assert saved.parent == tmp_path / "saved" and saved.name == "image-6.png"  # r2 is the second image, seed 6
    with Image.open(saved) as written, Image.open(io.BytesIO(images[1].data)) as made:
        assert written.tobytes() == made.tobytes()  # its pixels (the file adds its recipe's chunks)
    click(widget, {"type": "explode"})  # an unknown message changes nothing
    assert widget.status["text"] == "No result 'r9' in this Studio."

    # A second image server started meanwhile: the picker lists it when the page asks; Generate there by name.
    second_sim = start_sim(IMAGE_MODEL)
    manager.attach(second_sim.url, name="second")
    click(widget, {"type": "servers"})
    assert [option["label"] for option in widget.servers] == ["first", "second"]
    (third,) = asyncio.run(_generate(studio, server="second", count=1))
    assert widget.server == second_sim.url and third.seed is not None
    assert second_sim.log_path.read_text().count("POST /v1/images/generations") == 1

    with capture_output() as closing:
        studio.close()
        studio.close()
    assert len(closing.outputs) == 2 and all(o.data["text/plain"].startswith("Studio (closed)") for o in closing.outputs)
    with pytest.raises(InvalidRequestError, match="This Studio is closed; open a new one"):
        asyncio.run(_generate(studio))


async def _generate(studio: Studio, **form: Any) -> list[Any]:
    return await studio.generate(**form)


def test_a_server_that_went_away_and_a_cancel_as_an_image_arrives(manager: ServerManager, image_server: SimHandle,
                                                                  tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.sqlite3")
    gone = f"http://127.0.0.1:{free_port()}"
    studio = Studio("a heron", server=gone, manager=manager, store=store, live=True)
    with capture_output():
        studio._ipython_display_()
    widget = studio._widget
    assert [option["label"] for option in widget.servers] == [gone]  # a URL given, not managed: still offered
    with pytest.raises(VomniError) as caught:
        asyncio.run(_generate(studio))
    assert widget.status["state"] == "error" and widget.status["text"] == str(caught.value)
    assert gone in widget.status["text"]

    # Cancel clicked just as the first of two images is shown: that one is kept (recorded), the second never asked.
    widget.observe(lambda change: click(widget, {"type": "cancel"}), names="results")
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(_generate(studio, server=image_server.url, count=2))
    assert widget.status["state"] == "cancelled" and widget.status["text"].endswith("(1 of 2 made)")
    (kept,) = studio.results
    entries = store.search(kind="image")
    assert [(e.id, e.status) for e in entries] == [(kept.history_id, "ok"), (1, "error")]  # the failure is recorded
    # The strip of past results: the failed Generate has no picture to show, and a picture whose file is gone
    # (cleaned by hand) is left out rather than shown broken.
    assert [item["id"] for item in load_strip(store, 24)] == [kept.history_id]
    (picture,) = entries[0].files
    picture.path.unlink()
    assert load_strip(store, 24) == []
    with capture_output():
        studio.close()
    store.close()


def test_a_store_that_cannot_record_or_be_read_is_named_and_images_still_shown(
        manager: ServerManager, image_server: SimHandle, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.sqlite3")
    shutil.rmtree(store.files_dir)
    store.files_dir.write_text("not a folder")  # the history's files folder became a file
    studio = Studio("an owl", server=image_server.url, manager=manager, store=store, live=True)
    with capture_output():
        studio._ipython_display_()
    (image,) = asyncio.run(_generate(studio))
    widget = studio._widget
    assert [item["seed"] for item in widget.results] == [str(image.seed)] and widget.results[0]["entry_id"] is None
    assert widget.history_note.startswith("not recorded in history: ") and widget.strip == []
    with capture_output():
        studio.close()

    # A store that cannot be read (closed by its owner): the strip stays empty and the page says why.
    store.close()
    studio = Studio("an owl", server=image_server.url, manager=manager, store=store, live=True)
    with capture_output():
        studio._ipython_display_()
    widget = studio._widget
    deadline = time.monotonic() + 30
    while not widget.history_note and time.monotonic() < deadline:  # the strip loads on a thread of its own
        time.sleep(0.05)
    assert widget.history_note.startswith("history could not be read: ") and widget.strip == []
    with capture_output():
        studio.close()


def test_without_anywidget_the_studio_is_a_static_summary(manager: ServerManager,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A hand-made environment without anywidget (a missing module, which no installed part can stand for).
    monkeypatch.setitem(sys.modules, "anywidget", None)
    studio = Studio("a wren", manager=manager, store=False, live=True)
    with capture_output() as shown:
        studio._ipython_display_()
    (summary,) = shown.outputs
    assert WIDGET_MIME not in summary.data
    assert summary.data["text/plain"].startswith("Studio (no widget front end here) · no image server · 0 image(s)")


def test_a_picture_the_preview_cannot_read_is_sent_as_it_came() -> None:
    # A server may answer in a format Pillow cannot open: the page gets the bytes, and shows what it can.
    assert jpeg_preview(b"<svg xmlns='http://www.w3.org/2000/svg'/>", 112) == b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    small = jpeg_preview(_png(300, 200), 112)
    with Image.open(io.BytesIO(small)) as preview:
        assert (preview.format, preview.size) == ("JPEG", (112, 75))


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(out, "PNG")
    return out.getvalue()
