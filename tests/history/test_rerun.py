"""``vomni_nb.rerun``: a recorded request sent again gives byte-identical output on vomni-sim, from a
history id or from a file alone; the server is found by model; no server is a clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import vomni_nb
from tests.support.history import png_bytes
from tests.support.sims import IMAGE_MODEL, TTS_MODEL
from vomni_nb import OmniClient
from vomni_nb._history import HistoryStore
from vomni_nb._history.replay import same_bytes
from vomni_nb._recipes import png_with_recipe, png_without_recipe, read_recipe
from vomni_nb.errors import APIConnectionError, BadRequestError, InvalidRequestError
from vomni_nb.server import ServerManager, set_default_manager


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with HistoryStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def test_rerun_of_a_history_id_is_byte_identical(image_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client:
        image = client.image("a lighthouse at dusk", size="1024x1024", steps=3, guidance=2.5, negative="fog")
    again = vomni_nb.rerun(image.history_id, store=store)
    assert again.identical is True and again.note.endswith(f"byte-identical to history #{image.history_id}")
    assert again.result.seed == image.seed and again.result.params == image.params
    assert again.result.history_id not in (None, image.history_id)  # the rerun is recorded too
    assert png_without_recipe(again.result.data) == png_without_recipe(image.data)
    data, metadata = again._repr_mimebundle_()
    assert data["text/plain"].startswith("rerun of history #") and "byte-identical" in data["text/html"]
    assert metadata["vomni_nb"]["identical"] is True and metadata["vomni_nb"]["rerun_of"] == f"history #{image.history_id}"
    assert vomni_nb.rerun(f"#{image.history_id}", store=store).identical is True


def test_rerun_of_a_file_copied_out_of_the_store(image_server, store: HistoryStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client:
        image = client.image("a heron in the reeds", size="1024x1024", seed=99)
        pair = client.image("two foxes", size="64x64", n=2)
    copied = tmp_path / "elsewhere" / "keep.png"
    copied.parent.mkdir()
    shutil.copy(image.stored.files[0], copied)  # type: ignore[union-attr]
    store.close()  # the file alone: nothing is read from the history
    again = vomni_nb.rerun(str(copied))
    assert again.identical is True and again.original == str(copied) and again.result.seed == 99
    saved = pair[1].save(tmp_path)  # one of the n images of a request, saved with result.save()
    assert read_recipe(saved)["params"]["n"] == 2
    assert vomni_nb.rerun(saved).note.endswith("(one of 2 images)")


def test_rerun_notices_a_different_answer(image_server, store: HistoryStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client:
        image = client.image("a fox", size="64x64", seed=5)
    forged = tmp_path / "forged.png"
    forged.write_bytes(png_with_recipe(png_bytes((1, 2, 3), (64, 64)), image.provenance.to_record()))
    again = vomni_nb.rerun(forged)
    assert again.identical is False and "differs from" in again.note
    assert same_bytes(png_with_recipe(image.data, {"prompt": "other"}), image.data)  # recipe chunks do not count


def test_rerun_of_speech_reads_the_sidecar_and_of_an_edit_sends_the_stored_picture(  # type: ignore[no-untyped-def]
        tts_server, edit_server, store: HistoryStore, tmp_path: Path) -> None:
    with OmniClient(tts_server.url, history=store) as speaker:
        speech = speaker.speak("Every file can be made again.", voice="vivian")
    saved = speech.save(tmp_path)
    assert saved.with_suffix(".json").is_file() and read_recipe(saved)["params"]["input"] == speech.text
    assert vomni_nb.rerun(saved).identical is True
    with OmniClient(edit_server.url, history=store) as editor:
        edited = editor.edit(png_bytes((200, 10, 10), (64, 64)), "make it green", seed=4)
    assert vomni_nb.rerun(edited.history_id, store=store).identical is True


def test_the_server_is_found_by_model_and_none_is_a_clear_error(image_server, start_sim, store: HistoryStore,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path) -> None:
    sim = start_sim(IMAGE_MODEL)
    with OmniClient(sim.url, history=store) as client:
        image = client.image("a fox", size="64x64", seed=1)
    sim.stop()
    with pytest.raises(APIConnectionError, match=r"no server here serves Tongyi-MAI/Z-Image-Turbo: start it with "
                                                 r"`%omni_server start Tongyi-MAI/Z-Image-Turbo`"):
        vomni_nb.rerun(image.history_id, store=store)
    manager = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False)
    manager.attach(image_server.url)
    with set_default_manager(manager):
        again = vomni_nb.rerun(image.history_id, store=store)
    assert again.identical is True and again.server_url == image_server.url
    assert vomni_nb.rerun(image.history_id, store=store, server=image_server.url).identical is True


def test_a_server_of_another_model_is_refused(image_server, tts_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client:
        image = client.image("a fox", size="64x64", seed=1)
    with pytest.raises(InvalidRequestError, match=f"serves {TTS_MODEL}, not {IMAGE_MODEL}"):
        vomni_nb.rerun(image.history_id, store=store, server=tts_server.url)


def test_rerun_of_a_failed_generation_sends_the_same_call(tts_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(tts_server.url, history=store, max_retries=0) as client:
        with pytest.raises(BadRequestError):
            client.speak("no such voice here", voice="nobody-here")
    (failed,) = store.search(limit=None)
    with pytest.raises(BadRequestError):  # the same request, the same answer (and one more error row)
        vomni_nb.rerun(failed.id, store=store, server=tts_server.url)
    assert [e.status for e in store.search(limit=None)] == ["error", "error"]


def test_bad_sources(store: HistoryStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="no history entry #41"):
        vomni_nb.rerun(41, store=store)
    plain = tmp_path / "plain.png"
    plain.write_bytes(png_bytes())
    with pytest.raises(InvalidRequestError, match="carries no recipe"):
        vomni_nb.rerun(plain)
    with pytest.raises(InvalidRequestError, match="history id"):
        vomni_nb.rerun(tmp_path / "missing.png")


def test_rerun_of_video_and_chat(video_server, omni_server, store: HistoryStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(video_server.url, history=store) as filmer:
        video = filmer.video("a boat at sea", size="64x64", seconds=1, fps=4, poll_interval=0.05)
    assert vomni_nb.rerun(video.history_id, store=store).identical is True
    assert vomni_nb.rerun(video.save(tmp_path)).identical is True  # from the MP4 and its .json alone
    with OmniClient(omni_server.url, history=store) as chatter:
        answer = chatter.chat_stream("Say hello", modalities=["text"], seed=3).finish()
    again = vomni_nb.rerun(answer.history_id, store=store)
    assert again.identical is True and again.note.endswith(f"the same answer as history #{answer.history_id}")


class _Shown:
    """A result that displays as ``bundle``: Rerun takes any result, and each display form is one branch."""

    def __init__(self, bundle: dict[str, str]) -> None:
        self.bundle = bundle

    def _repr_mimebundle_(self) -> tuple[dict[str, str], dict[str, object]]:
        return dict(self.bundle), {mime: {"width": 8} for mime in self.bundle if mime.startswith("image/")}


@pytest.mark.parametrize(("bundle", "where"), [
    ({"text/plain": "r", "text/html": "<b>r</b>"}, "text/html"),
    ({"text/plain": "r", "text/markdown": "*r*"}, "text/markdown"),
    ({"text/plain": "r", "image/jpeg": "AAAA"}, "text/html"),
    ({"text/plain": "r", "image/png": "AAAA"}, "text/html"),
    ({"text/plain": "r"}, "text/plain"),
])
def test_a_rerun_shows_its_note_above_any_result(bundle: dict[str, str], where: str) -> None:
    from vomni_nb._history.replay import Rerun

    rerun = Rerun(_Shown(bundle), "history #3", False, "rerun of history #3 on http://h: differs <b>", "http://h")
    data, metadata = rerun._repr_mimebundle_()
    note = "rerun of history #3 on http://h: differs"
    assert data["text/plain"] == f"{note} <b>\nr" and note in data[where]
    if where == "text/html":
        assert f"{note} &lt;b&gt;</p>" in data[where]  # the note is escaped in HTML
    if "image/png" in bundle or "image/jpeg" in bundle:  # the picture moves into the HTML, embedded once
        assert not any(mime.startswith("image/") for mime in data) and "base64,AAAA" in data["text/html"]
        assert not any(mime.startswith("image/") for mime in metadata)
    assert metadata["vomni_nb"] == {"rerun_of": "history #3", "identical": False}


def test_an_output_file_gone_from_the_store_is_a_clear_error(image_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client:
        image = client.image("a fox", size="64x64", seed=2)
    image.stored.files[0].unlink()  # type: ignore[union-attr]
    with pytest.raises(InvalidRequestError, match=f"A file of history #{image.history_id} cannot be read"):
        vomni_nb.rerun(image.history_id, store=store)


def test_a_saved_edit_finds_its_picture_in_the_store_that_recorded_it(  # type: ignore[no-untyped-def]
        edit_server, store: HistoryStore, tmp_path: Path) -> None:
    with OmniClient(edit_server.url, history=store) as editor:
        edited = editor.edit(png_bytes((10, 200, 10), (64, 64)), "make it blue", seed=6)
    saved = edited.save(tmp_path / "out")  # found in the store by its bytes: the store lists the picture sent
    assert vomni_nb.rerun(saved, store=store).identical is True
    record = {**read_recipe(saved), "inputs": [{"sha256": "0" * 64, "mime": "image/png"}]}
    named = tmp_path / "named.png"
    named.write_bytes(png_with_recipe(edited.data, record))
    with pytest.raises(InvalidRequestError, match="names an input that is not in"):
        vomni_nb.rerun(named, store=store)
    blind = tmp_path / "blind.png"
    blind.write_bytes(png_with_recipe(png_bytes((1, 1, 1), (64, 64)), read_recipe(saved)))
    with pytest.raises(InvalidRequestError, match=r"is an edit, but the picture it edited is not in the history; "
                                                  r"rerun it with client.edit\(picture, \*\*recipe\)"):
        vomni_nb.rerun(blind, store=store)  # other bytes: not a file the history holds


def test_rerun_of_a_chat_sends_its_attached_picture_again(omni_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(omni_server.url, history=store) as chatter:
        answer = chatter.chat("What is in this picture?", images=[png_bytes((0, 0, 255), (32, 32))],
                              modalities=["text"], seed=8)
    assert len(store.inputs_of(store.get(answer.history_id))) == 1  # type: ignore[arg-type]
    again = vomni_nb.rerun(answer.history_id, store=store)
    assert again.identical is True and again.result.text == answer.text


def test_a_failed_original_rerun_on_a_healthy_server_has_nothing_to_compare(  # type: ignore[no-untyped-def]
        image_server, start_sim, store: HistoryStore) -> None:
    busy = start_sim(IMAGE_MODEL, "--rate-503", "1")
    with OmniClient(busy.url, history=store, max_retries=0) as client, pytest.raises(vomni_nb.errors.APIStatusError):
        client.image("a quiet harbour", size="64x64", seed=11)
    (failed,) = store.search(limit=None)
    assert failed.status == "error" and failed.files == ()
    again = vomni_nb.rerun(failed.id, store=store, server=image_server.url)
    assert again.identical is None and again.result.seed == 11
    assert again.note.endswith(f"nothing to compare with history #{failed.id} (it has no output file: it failed)")


def test_a_client_passed_in_records_into_the_store_and_stays_open(  # type: ignore[no-untyped-def]
        image_server, tts_server, store: HistoryStore, tmp_path: Path) -> None:
    with OmniClient(image_server.url, history=store) as client:
        image = client.image("a fox", size="64x64", seed=3)
    with HistoryStore(tmp_path / "elsewhere.sqlite3") as elsewhere, OmniClient(image_server.url) as mine, \
            OmniClient(tts_server.url) as wrong:
        again = vomni_nb.rerun(image.history_id, store=store, server=mine)
        assert again.identical is True and store.get(again.result.history_id) is not None
        with pytest.raises(InvalidRequestError, match=f"serves {TTS_MODEL}, not {IMAGE_MODEL}"):
            vomni_nb.rerun(image.history_id, store=store, server=wrong)
        assert wrong.models() == [TTS_MODEL]  # the caller's client was not closed by the refusal
        assert elsewhere.search(limit=None) == ()


def test_a_recipe_with_no_server_and_no_server_here_is_a_clear_error(image_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=False) as client:
        image = client.image("a fox", size="64x64", seed=3)
    record = image.provenance.to_record()
    record.pop("server_url")
    lost = tmp_path / "lost.png"
    lost.write_bytes(png_with_recipe(image.data, record))
    manager = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False)
    with set_default_manager(manager), pytest.raises(
            InvalidRequestError, match=f"No server to send it to: the recipe names no server, and none here serves "
                                       f"{IMAGE_MODEL}; start it with `%omni_server start {IMAGE_MODEL}` \\(add --sim without a GPU\\), "
                                       f"or pass server=URL"):
        vomni_nb.rerun(lost)
