"""%%omni_edit SOURCE and %omni_history in an in-process shell against real simulators."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from PIL import Image

from tests.support.history import make_record, png_bytes
from tests.support.magics import generations, last_output, rendered
from tests.support.sims import EDIT_MODEL, TTS_MODEL
from vomni_nb.errors import WrongServerError
from vomni_nb.server import default_manager


def test_edit_a_result_variable_keeping_its_size(magic_shell: Any, image_server: Any, edit_server: Any) -> None:
    default_manager().attach(image_server.url)
    default_manager().attach(edit_server.url)
    magic_shell.run_cell_magic("omni_image", "--size 48x32 --seed 2 --out pic;", "a lighthouse")
    with capture_output() as captured:
        magic_shell.user_ns["when"] = "night"
        magic_shell.run_cell_magic("omni_edit", "pic --seed 4 --out night", "make it {when}")
    output = last_output(captured)
    assert Image.open(io.BytesIO(base64.b64decode(output.data["image/png"]))).size == (48, 32)  # --size auto
    record = output.metadata["vomni_nb"]
    assert record["kind"] == "edit" and record["model"] == EDIT_MODEL and record["server_url"] == edit_server.url
    assert record["prompt"] == "make it night" and record["seed"] == 4
    assert magic_shell.user_ns["night"].size == "48x32"


def test_edit_a_file_and_a_batch_item(magic_shell: Any, edit_server: Any, tmp_path: Path) -> None:
    default_manager().attach(edit_server.url)
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_bytes(size=(40, 20)))
    magic_shell.run_cell_magic("omni_edit", f"{photo} --size 64x32 --out edited;", "add a moon")
    assert magic_shell.user_ns["edited"].size == "64x32"
    from vomni_nb.results import ImageBatch

    magic_shell.user_ns["pair"] = ImageBatch((magic_shell.user_ns["edited"], magic_shell.user_ns["edited"]))
    magic_shell.run_cell_magic("omni_edit", "pair[1] --out second;", "brighter")
    assert magic_shell.user_ns["second"].size == "64x32"


BAD_EDITS = [
    ("no/such/picture.png", "a moon", "neither a variable nor a file"),
    ("pair", "a moon", "holds 2 images: pick one"),
    ("pair[5]", "a moon", "index out of range"),
    ("word", "a moon", "cannot use float as image input"),
    ("#12", "a moon", "no history yet|History #12"),
    ("pic --size 10", "a moon", "size must look like"),
    ("pic", "  ", "The cell is empty"),
    ("", "a moon", "the following arguments are required: SOURCE"),
]


@pytest.mark.parametrize(("line", "cell", "reason"), BAD_EDITS, ids=[line or "no source" for line, _, _ in BAD_EDITS])
def test_bad_edits_fail_before_any_request(magic_shell: Any, edit_server: Any, line: str, cell: str,
                                           reason: str) -> None:
    from vomni_nb.results import ImageBatch, ImageResult

    default_manager().attach(edit_server.url)
    picture = ImageResult(png_bytes(), "png", 32, 24)
    magic_shell.user_ns.update(pic=picture, pair=ImageBatch((picture, picture)), word=7.5)  # an int would be a history id
    before = generations(edit_server)
    with pytest.raises(UsageError, match=reason):
        magic_shell.run_cell_magic("omni_edit", line, cell)
    assert generations(edit_server) == before


def test_an_image_model_that_cannot_edit_is_not_used_for_edits(magic_shell: Any, image_server: Any,
                                                              tts_server: Any) -> None:
    from vomni_nb.errors import ServerManagerError
    from vomni_nb.results import ImageResult

    default_manager().attach(image_server.url)
    default_manager().attach(tts_server.url)
    magic_shell.user_ns["pic"] = ImageResult(png_bytes(), "png", 32, 24)
    before = generations(image_server), generations(tts_server)
    with pytest.raises(ServerManagerError) as caught:
        magic_shell.run_cell_magic("omni_edit", "pic", "make it night")
    text = rendered(caught.value)
    assert "no server can edit images; running: Tongyi-MAI/Z-Image-Turbo (an image model" in text
    assert "`%omni_server start Qwen/Qwen-Image-Edit --sim`" in text
    # Named by hand, a TTS server is refused before sending (an image model is not: 0.30.0 answers its edits
    # as image-to-image, so only the server can say no).
    with pytest.raises(WrongServerError, match=f"{TTS_MODEL} is a TTS model: it cannot edit images"):
        magic_shell.run_cell_magic("omni_edit", f"pic --server {TTS_MODEL}", "make it night")
    assert (generations(image_server), generations(tts_server)) == before


def test_history_magic_shows_the_twins_table(magic_shell: Any, tmp_path: Path) -> None:
    from vomni_nb._history import HistoryStore

    store = HistoryStore(tmp_path / "history")  # the folder the magic_shell fixture records into
    store.record(make_record(prompt="a lighthouse at dusk"), files=[png_bytes()])
    store.record(make_record(prompt="a red bicycle", kind="image"), files=[png_bytes()])
    table = magic_shell.run_line_magic("omni_history", "-n 5 --search lighthouse --kind image")
    assert len(table) == 1 and "a lighthouse at dusk" in repr(table)
    assert len(magic_shell.run_line_magic("omni_history", "")) == 2
    assert magic_shell.run_line_magic("omni_history", "-n 1;") is None
    with pytest.raises(UsageError):
        magic_shell.run_line_magic("omni_history", "--kind song")
