"""Every result of both clients is recorded, in one place, before the caller gets it; failures too; a
store that fails never costs the result. Real vomni-sim servers and real stores throughout."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
from pathlib import Path

import pytest

from tests.support.history import assert_every_row_has_its_files, png_bytes
from tests.support.sims import OMNI_MODEL
from vomni_nb import AsyncOmniClient, OmniClient
from vomni_nb._history import HistoryStore, blobs as _blobs, set_history_enabled
from vomni_nb._recipes import png_text_chunks, png_without_recipe
from vomni_nb.errors import BadRequestError, InvalidRequestError, StreamError
from vomni_nb.results import ImageBatch, ImageResult, SpeechResult


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    with HistoryStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def _stored_bytes(result) -> bytes:  # type: ignore[no-untyped-def]
    return Path(result.stored.files[0]).read_bytes()


def test_an_image_is_recorded_before_it_is_returned(image_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client:
        image = client.image("a lighthouse at dusk", size="64x48", steps=2, seed=11)
    entry = store.get(image.history_id)
    assert entry is not None and entry.kind == "image" and entry.status == "ok" and entry.seed == 11
    assert entry.prompt == "a lighthouse at dusk" and entry.params["num_inference_steps"] == 2
    assert entry.record["size"] == "64x48" and entry.record["request_id"] == image.provenance.request_id
    # The stored file is the saved file: the server's bytes with our recipe chunks, nothing else changed.
    stored = _stored_bytes(image)
    assert png_without_recipe(stored) == png_without_recipe(image.data)
    assert png_text_chunks(stored)["vomni_nb"] == image.provenance.to_json()
    assert f"history_id={image.history_id})" in repr(image)
    _, metadata = image._repr_mimebundle_()
    assert metadata["vomni_nb"]["history_id"] == image.history_id


def test_a_sweep_records_each_cell_and_n_images_share_one_entry(image_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client:
        sweep = client.images("a heron", seeds=[1, 2, 3], grid={"steps": [1, 2]}, size="32x32")
        pair = client.image("two herons", n=2, size="32x32", seed=4)
    assert isinstance(sweep, ImageBatch) and len(sweep) == 6 and len(set(sweep.history_ids)) == 6
    assert sorted(e.id for e in store.search("heron", limit=None) if e.prompt == "a heron") == sorted(sweep.history_ids)
    for image in sweep:
        assert hashlib.sha256(_stored_bytes(image)).hexdigest() == store.get(image.history_id).files[0].sha256  # type: ignore[union-attr]
    assert isinstance(pair, ImageBatch) and pair.history_ids[0] == pair.history_ids[1]
    entry = store.get(pair.history_ids[0])  # type: ignore[arg-type]
    assert entry is not None and len(entry.files) == 2 and entry.record["n"] == 2
    assert [Path(image.stored.files[0]) for image in pair] == [f.path for f in entry.files]  # type: ignore[union-attr]
    assert "history_ids=[" in repr(sweep)


def test_edit_speech_chat_and_video_are_recorded(edit_server, tts_server, omni_server, video_server,  # type: ignore[no-untyped-def]
                                                 store: HistoryStore) -> None:
    picture = png_bytes((10, 200, 30), (64, 64))
    with OmniClient(edit_server.url, history=store) as editor:
        edited = editor.edit(picture, "make it blue", seed=3)
    entry = store.get(edited.history_id)
    assert entry is not None and entry.kind == "edit" and [f.path.read_bytes() for f in store.inputs_of(entry)] == [picture]
    with OmniClient(tts_server.url, history=store) as speaker:
        speech = speaker.speak("Hello there.", voice="vivian")
        streamed = speaker.speak_stream("Streamed hello.", response_format="pcm")
        assert streamed.finish().history_id is not None and streamed.finish().history_id == streamed.result.history_id
    assert _stored_bytes(speech) == speech.audio and store.get(speech.history_id).kind == "speech"  # type: ignore[union-attr]
    with OmniClient(omni_server.url, history=store) as chat_client:
        answer = chat_client.chat("Say hi", modalities=["text"])
        streamed_answer = chat_client.chat_stream("Say hello", modalities=["text"]).finish()
    assert store.get(answer.history_id).record["answer"] == answer.text  # type: ignore[union-attr]
    assert store.get(streamed_answer.history_id).record["answer"] == streamed_answer.text  # type: ignore[union-attr]
    with OmniClient(video_server.url, history=store) as filmer:
        video = filmer.video("a boat", size="64x64", seconds=1, fps=4, poll_interval=0.05, seed=2)
    assert _stored_bytes(video) == video.data and f"history_id={video.history_id}" in repr(video)
    assert {e.kind for e in store.search(limit=None)} == {"edit", "speech", "chat", "video"}
    assert_every_row_has_its_files(store.path)


def test_the_async_client_records_the_same_way(image_server, tts_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    async def main() -> tuple[ImageResult, ImageBatch, int | None]:
        async with AsyncOmniClient(image_server.url, history=store) as client:
            image = await client.image("an async fox", size="32x32", seed=1)
            sweep = await client.images("an async fox", seeds=[2, 3], size="32x32")
        async with AsyncOmniClient(tts_server.url, history=store) as speaker:
            stream = await speaker.speak_stream("async words", response_format="pcm")
            speech = await stream.finish()
        return image, sweep, speech.history_id

    image, sweep, speech_id = asyncio.run(main())
    assert image.history_id is not None and None not in sweep.history_ids and speech_id is not None
    assert len(store) == 4


def test_failures_are_recorded_and_bad_input_is_not(tts_server, start_sim, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(tts_server.url, history=store, max_retries=0) as client:
        with pytest.raises(BadRequestError):
            client.speak("a voice the server does not have", voice="nobody-here")
        with pytest.raises(InvalidRequestError):
            client.image("nothing is sent", size="0x0")
    (failed,) = store.search(limit=None)
    assert failed.status == "error" and failed.kind == "speech" and failed.files == ()
    assert failed.error is not None and failed.error.startswith("BadRequestError: 400")
    assert failed.record["method"] == "speak" and failed.record["arguments"]["voice"] == "nobody-here"
    assert failed.prompt == "a voice the server does not have" and failed.server_url == tts_server.url
    sim = start_sim(OMNI_MODEL, "--midstream-error-after", "3", "--tokens-per-second", "2000")
    with OmniClient(sim.url, history=store) as chatter:
        stream = chatter.chat_stream("tell me a long story", modalities=["text"])
        with pytest.raises(StreamError):
            stream.finish()
    assert store.search("long story")[0].status == "error"


def test_each_spoken_item_of_a_batch_is_an_entry(tts_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(tts_server.url, history=store) as client:
        results = client.speak_batch(["Hello there", {"text": "Nobody speaks", "voice": "nobody"}, "Goodbye"],
                                     voice="vivian")
    spoken = [r for r in results if isinstance(r, SpeechResult)]
    assert len(results) == 3 and len(spoken) == 2 and not isinstance(results[1], SpeechResult)
    assert all(r.history_id is not None for r in spoken)
    entries = store.search(limit=None)
    assert sorted(e.prompt for e in entries) == ["Goodbye", "Hello there"]
    assert all(e.kind == "speech" and e.status == "ok" and len(e.files) == 1 for e in entries)


def test_a_failure_record_never_holds_the_key(image_server, store: HistoryStore) -> None:  # type: ignore[no-untyped-def]
    from vomni_nb._recording import CallRecording
    from vomni_nb._plans import image

    key = "sk-never-in-history-0123456789"
    with OmniClient(image_server.url, api_key=key, history=store) as client:
        recording = CallRecording(image(client._core, "a fox", seed=1), store)
    recording.failed(BadRequestError(f"400 from the server: your key {key} was echoed", status_code=400))
    (entry,) = store.search(limit=None)
    assert key not in (entry.error or "") and "***" in (entry.error or "")
    assert key not in store.path.read_bytes().decode("latin-1") and key not in str(entry.record)


def test_off_switches(image_server, store: HistoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    with OmniClient(image_server.url, history=store) as client, OmniClient(image_server.url) as default:
        assert client.with_options(history=False).image("not kept", size="32x32").stored is None
        monkeypatch.setenv("VOMNI_HISTORY", "off")
        assert client.image("not kept either", size="32x32").history_id is None
        monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "elsewhere.sqlite3"))
        set_history_enabled(False)
        try:
            assert default.image("global switch", size="32x32").history_id is None
        finally:
            set_history_enabled(True)
        assert len(store) == 0 and not (tmp_path / "elsewhere.sqlite3").exists()
        kept = default.image("the default store", size="32x32")  # history=None: VOMNI_HISTORY
    assert kept.history_id is not None and str(kept.stored.files[0]).startswith(str(tmp_path / "elsewhere-files"))  # type: ignore[union-attr]
    with pytest.raises(InvalidRequestError, match="history= takes a HistoryStore"):
        OmniClient(image_server.url, history="yes")  # type: ignore[arg-type]


def test_a_full_disk_never_loses_the_result(image_server, store: HistoryStore, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                            caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> None:
    client = OmniClient(image_server.url, history=store)
    client.image("before the disk filled", size="32x32", seed=1)
    request.addfinalizer(client.close)

    def full(fd: int, data: bytes) -> None:
        # The one mock here: a real disk cannot be made full at one chosen write (test_full_disk.py
        # fills a real tmpfs too).
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_blobs, "_write_all", full)
    with caplog.at_level(logging.WARNING, logger="vomni_nb.history"):
        image = client.image("while the disk is full", size="256x256", seed=2)
        sweep = client.images("a full sweep", seeds=[3, 4], size="32x32")
    assert isinstance(image, ImageResult) and image.data.startswith(b"\x89PNG") and image.history_id is None
    assert image.stored is not None and "No space left" in (image.stored.note or "")
    assert all("No space left" in (cell.stored.note or "") for cell in sweep)  # type: ignore[union-attr]
    assert "not recorded in the history" in caplog.text
    data, metadata = image._repr_mimebundle_()
    assert "not in the history" in data["text/plain"] and "No space left" in metadata["vomni_nb"]["history_note"]
    monkeypatch.undo()
    assert len(store) == 1 and assert_every_row_has_its_files(store.path) == 1
    assert client.image("after", size="32x32").history_id is not None


def test_a_store_we_did_not_write_gives_a_note_not_an_error(image_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = tmp_path / "theirs.sqlite3"
    foreign.write_bytes(b"somebody else's notes")
    monkeypatch.setenv("VOMNI_HISTORY", str(foreign))
    with OmniClient(image_server.url) as client:
        image = client.image("a fox", size="32x32")
    assert image.history_id is None and "not a vomni_nb history" in (image.stored.note or "")  # type: ignore[union-attr]
    assert foreign.read_bytes() == b"somebody else's notes"


def test_every_capability_that_makes_a_result_is_recorded() -> None:
    # A new or renamed capability must be added to GENERATIONS (or the sweeps), or its results would
    # silently go unrecorded.
    import inspect

    from vomni_nb._recording import _SWEEPS, GENERATIONS

    for client in (OmniClient, AsyncOmniClient):
        for name, method in inspect.getmembers(client, inspect.isfunction):
            plan = getattr(method, "_runs_plan", None)
            if plan is None:
                continue
            returns = str(inspect.signature(plan).return_annotation)
            makes_results = any(word in returns for word in ("Result", "ImageBatch", "OpenedStream"))
            assert makes_results == (plan.__name__ in GENERATIONS or plan.__name__ in _SWEEPS), (client, name)
