"""The magics with the history and the widgets, in an in-process shell against real simulators: --no-log
and ``%config VomniMagics.history``/``history_path``, history ids as SOURCE, ``%omni_rerun``, a result the
history could not record, ``%omni_studio`` and ``%omni_server panel``; bad input refused before a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from tests.support.magics import generations, last_output
from vomni_nb._history import HistoryStore
from vomni_nb.server import default_manager


def _cell(shell: Any, magic: str, line: str, cell: str) -> Any:
    with capture_output() as captured:
        shell.run_cell_magic(magic, line, cell)
    return captured


def test_no_log_and_the_history_setting_keep_generations_out(magic_shell: Any, image_server: Any,
                                                             tmp_path: Path) -> None:
    default_manager().attach(image_server.url)
    store = HistoryStore(tmp_path / "history")  # where the magic_shell fixture's VOMNI_HISTORY points
    _cell(magic_shell, "omni_image", "--size 32x32 --seed 1 --out kept;", "a kept lighthouse")
    _cell(magic_shell, "omni_image", "--size 32x32 --seed 2 --no-log --out skipped;", "a skipped lighthouse")
    _cell(magic_shell, "omni_image", "--size 32x32 --seed 3,4 --no-log --out grid;", "a skipped grid")
    magic_shell.run_line_magic("config", "VomniMagics.history = False")
    _cell(magic_shell, "omni_image", "--size 32x32 --seed 5 --out off;", "history off for the magics")
    assert magic_shell.user_ns["kept"].history_id is not None
    assert magic_shell.user_ns["skipped"].history_id is None and magic_shell.user_ns["off"].history_id is None
    assert [image.history_id for image in magic_shell.user_ns["grid"].images] == [None, None]
    assert [entry.prompt for entry in store.search(None, limit=None)] == ["a kept lighthouse"]


def test_history_path_is_where_the_magics_record_and_what_history_and_rerun_read(magic_shell: Any, image_server: Any,
                                                                                  tmp_path: Path) -> None:
    default_manager().attach(image_server.url)
    mine = tmp_path / "mine"
    magic_shell.run_line_magic("config", f"VomniMagics.history_path = {str(mine)!r}")
    _cell(magic_shell, "omni_image", "--size 32x32 --seed 7 --out pic;", "a lighthouse of my own")
    entry_id = magic_shell.user_ns["pic"].history_id
    assert entry_id is not None and [e.id for e in HistoryStore(mine).search(None, limit=None)] == [entry_id]
    assert not (tmp_path / "history").exists()  # the default history was not touched
    table = magic_shell.run_line_magic("omni_history", "-n 5")
    assert [row.id for row in table.entries] == [entry_id]
    before = generations(image_server)
    with capture_output() as captured:
        magic_shell.run_line_magic("omni_rerun", f"#{entry_id} --out again")
    again = magic_shell.user_ns["again"]
    assert generations(image_server) == before + 1 and again.identical is True
    assert again.result.seed == 7 and again.result.history_id not in (None, entry_id)
    output = last_output(captured)
    assert f"rerun of history #{entry_id}" in output.data["text/plain"]
    assert output.metadata["vomni_nb"]["rerun_of"] == f"history #{entry_id}"


def test_a_history_id_is_a_source_for_edits_and_chat(magic_shell: Any, image_server: Any, edit_server: Any,
                                                     omni_server: Any) -> None:
    for server in (image_server, edit_server, omni_server):
        default_manager().attach(server.url)
    _cell(magic_shell, "omni_image", "--size 32x32 --seed 3 --out pic;", "a lighthouse")
    entry_id = magic_shell.user_ns["pic"].history_id
    _cell(magic_shell, "omni_edit", f"#{entry_id} --out night;", "make it night")
    assert magic_shell.user_ns["night"].size == "32x32"  # --size auto: the stored image's size
    _cell(magic_shell, "omni_chat", f"--new --no-stream --image {entry_id} --out seen;", "What is in it?")
    assert magic_shell.user_ns["seen"].text


def test_a_result_the_history_could_not_record_says_why(magic_shell: Any, image_server: Any, tts_server: Any,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for server in (image_server, tts_server):
        default_manager().attach(server.url)
    foreign = tmp_path / "theirs.sqlite3"
    foreign.write_bytes(b"somebody else's notes")  # a real file we did not write: recording fails, not the call
    monkeypatch.setenv("VOMNI_HISTORY", str(foreign))
    spoken = last_output(_cell(magic_shell, "omni_speak", "--out said", "Hello there."))
    assert "not in the history" in spoken.data["text/html"] and "not a vomni_nb history" in spoken.data["text/plain"]
    grid = last_output(_cell(magic_shell, "omni_image", "--size 32x32 --seed 1,2", "a lighthouse"))
    assert "2 not in the history" in grid.data["text/html"] and "not in the history" in grid.data["text/plain"]
    assert magic_shell.user_ns["said"].history_id is None and foreign.read_bytes() == b"somebody else's notes"


def test_studio_and_the_server_panel_are_the_widgets(magic_shell: Any, image_server: Any, tmp_path: Path) -> None:
    from vomni_nb.widgets import ServerPanel, Studio

    default_manager().attach(image_server.url, name="img")
    magic_shell.user_ns["subject"] = "a lighthouse"
    magic_shell.run_line_magic("config", "VomniMagics.default_size = '512x512'")
    studio = magic_shell.run_line_magic("omni_studio", "--steps 8 --seed 4 --server img {subject} at dusk")
    try:
        assert isinstance(studio, Studio)
        form = studio._form()  # what the form shows (its fields are text, as a person types them)
        assert form["prompt"] == "a lighthouse at dusk" and form["size"] == "512x512"
        assert str(form["steps"]) == "8" and str(form["seed"]) == "4" and image_server.url in repr(studio)
    finally:
        studio.close()
    panel = magic_shell.run_line_magic("omni_server", "panel")
    try:
        assert isinstance(panel, ServerPanel) and panel.manager is default_manager()
        assert [row.name for row in panel.refresh().rows] == ["img"]
    finally:
        panel.close()


def test_the_studio_records_where_the_settings_say_and_nothing_with_history_off(magic_shell: Any, image_server: Any,
                                                                                 tmp_path: Path) -> None:
    import asyncio

    default_manager().attach(image_server.url, name="img")

    async def generated(line: str) -> tuple[Any, list[Any]]:  # Studio.generate runs on the running loop
        studio = magic_shell.run_line_magic("omni_studio", line)
        try:
            return studio, await studio.generate()
        finally:
            studio.close()

    magic_shell.run_line_magic("config", "VomniMagics.history = False")
    studio, images = asyncio.run(generated("--size 64x64 --seed 4 --server img a kite with history off"))
    assert studio.store is None and [image.history_id for image in images] == [None]
    assert "history is off" in studio._note
    magic_shell.run_line_magic("config", "VomniMagics.history = True")
    mine = tmp_path / "mine"  # a new, empty store (falsy: it has no entries yet) is still where it records
    magic_shell.run_line_magic("config", f"VomniMagics.history_path = {str(mine)!r}")
    studio, images = asyncio.run(generated("--size 64x64 --seed 5 --server img a kite of my own"))
    assert images[0].history_id is not None
    assert [entry.prompt for entry in HistoryStore(mine).search(None, limit=None)] == ["a kite of my own"]
    assert not HistoryStore(tmp_path / "history").search(None, limit=None)  # the default history: untouched


@pytest.mark.parametrize(("magic", "line", "reason"), [
    ("omni_rerun", "no-such-file.png", "give a history id"),
    ("omni_rerun", "12 --server a,b", "--server takes one value"),
    ("omni_rerun", "12 --out 1x", "--out takes a variable name"),
    ("omni_studio", "--steps 500 a kite", "steps takes 1 to 200"),
    ("omni_studio", "--size big a kite", "size"),
    ("omni_studio", "--seed 1,2 a kite", "--seed takes one value"),
    ("omni_server", "panel img", "panel takes no NAME"),
])
def test_bad_lines_are_usage_errors_before_any_request(magic_shell: Any, image_server: Any, magic: str, line: str,
                                                       reason: str) -> None:
    default_manager().attach(image_server.url, name="img")
    before = generations(image_server)
    with pytest.raises(UsageError, match=reason):
        magic_shell.run_line_magic(magic, line)
    assert generations(image_server) == before
