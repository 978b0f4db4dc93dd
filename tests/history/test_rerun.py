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
