"""The chat twins from plain Python: a Conversation remembers, the default one is vomni_nb.chat's, a failed turn
changes nothing, and media become data: URL parts of the turn."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import vomni_nb
from tests.support.magics import generations
from tests.support.sims import OMNI_MODEL
from vomni_nb.conversation import check_chat_options, default_conversation
from vomni_nb.errors import InvalidRequestError, StreamError


def test_a_conversation_sends_the_whole_exchange_and_remembers_the_answer(omni_server: Any) -> None:
    talk = vomni_nb.Conversation(system="You keep a lighthouse.", server=omni_server.url)
    first = talk.send("Who are you?")
    second = talk.send("What do you do at night?", max_tokens=50, seed=2)
    assert second.usage["prompt_tokens"] > first.usage["completion_tokens"]  # the first turn went along
    assert [m["role"] for m in talk.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert talk.results == (first, second) and talk.last is second and len(talk) == 2
    assert second.prompt == "What do you do at night?" and second.params["seed"] == 2
    assert repr(talk).startswith("Conversation(2 turns, system='You keep a lighthouse.'")
    talk.messages.clear()  # a copy: the conversation is unchanged
    assert len(talk.messages) == 5
    talk.reset()
    assert talk.messages == [{"role": "system", "content": "You keep a lighthouse."}] and len(talk) == 0


def test_a_streamed_turn_outside_a_kernel_returns_the_whole_answer(omni_server: Any) -> None:
    talk = vomni_nb.Conversation(server=omni_server.url)
    answer = talk.send("Stream this, with nobody watching.", stream=True, voice="ethan")
    assert answer.text.startswith("[vomni-sim]") and answer.audio_format == "wav" and answer.audio
    assert talk.messages[-1] == {"role": "assistant", "content": answer.text}


def test_a_failed_turn_leaves_the_conversation_as_it_was(omni_server: Any, start_sim: Any) -> None:
    broken = start_sim(OMNI_MODEL, "--midstream-error-after", "2")
    talk = vomni_nb.Conversation(server=omni_server.url)
    talk.send("First.")
    with pytest.raises(StreamError):
        talk.send("Second.", stream=True, server=broken.url)
    assert len(talk) == 1 and len(talk.messages) == 2


def test_the_default_conversation_is_chats_and_new_replaces_it_only_on_success(omni_server: Any) -> None:
    vomni_nb.chat("One.", new=True, server=omni_server.url, system="Be brief.")
    vomni_nb.chat("Two.", server=omni_server.url)
    assert len(default_conversation()) == 2
    before = generations(omni_server)
    with pytest.raises(InvalidRequestError, match="modalities must be"):
        vomni_nb.chat("Three.", new=True, server=omni_server.url, modalities="smell")
    assert len(default_conversation()) == 2 and generations(omni_server) == before
    vomni_nb.chat("Three.", new=True, server=omni_server.url)
    assert len(default_conversation()) == 1 and default_conversation().system is None


def test_media_become_data_url_parts_of_the_turn(omni_server: Any, tmp_path: Any) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(buffer, "PNG")
    path = tmp_path / "blue.png"
    path.write_bytes(buffer.getvalue())
    talk = vomni_nb.Conversation(server=omni_server.url)
    answer = talk.send("What is this?", images=path)
    parts = talk.messages[0]["content"]
    assert parts[0] == {"type": "text", "text": "What is this?"}
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,") and "(mostly blue)" in answer.text
    assert answer.prompt == "What is this?" and "data:" not in str(answer.provenance.to_record())


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"modalities": "text,smell"}, "modalities must be some of"),
    ({"modalities": []}, "modalities must be some of"),
    ({"voice": "ethan", "modalities": ["text"]}, "A voice is for spoken answers"),
    ({"audio_format": "mp3"}, "audio_format is for spoken answers"),
    ({"modalities": "text,audio", "audio_format": "mp3", "stream": True},
     r"A streamed spoken answer plays as it arrives, which takes wav or pcm; got .mp3.\. For mp3, pass stream=False"),
    ({"temperature": 5}, "temperature must be from 0"),
    ({"max_tokens": 0}, "max_tokens must be from 1"),
])
def test_bad_options_are_refused(kwargs: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRequestError, match=reason):
        check_chat_options(**kwargs)


def test_answers_are_text_unless_audio_is_asked_for() -> None:
    assert check_chat_options() == {"modalities": ["text"]}
    assert check_chat_options(voice="ethan") == {"modalities": ["text", "audio"], "voice": "ethan",
                                                 "audio_format": "mp3"}
    assert check_chat_options(modalities="text,audio", stream=True)["audio_format"] == "wav"


def test_bad_media_fail_before_any_request(omni_server: Any) -> None:
    before = generations(omni_server)
    talk = vomni_nb.Conversation(server=omni_server.url)
    with pytest.raises(InvalidRequestError, match="no such file"):
        talk.send("hi", images=["nowhere.png"])
    with pytest.raises(InvalidRequestError, match="cannot use float as audio input"):
        talk.send("hi", audio=[3.5])
    assert generations(omni_server) == before and len(talk) == 0


def test_a_conversation_can_start_from_messages_in_the_apis_form(omni_server: Any) -> None:
    earlier = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi."},
               {"role": "assistant", "content": "Hello."}]
    talk = vomni_nb.Conversation(messages=earlier, server=omni_server.url)
    assert talk.system == "Be brief." and len(talk) == 1 and talk.messages == earlier and talk.results == ()
    answer = talk.send("And now?", status=False)
    assert len(talk) == 2 and talk.last is answer
    with pytest.raises(InvalidRequestError, match="needs a role"):
        vomni_nb.Conversation(messages=[{"role": "robot", "content": "?"}])
    with pytest.raises(InvalidRequestError, match="Only the first message may be the system"):
        vomni_nb.Conversation(messages=[{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])


@pytest.mark.kernel
@pytest.mark.slow
def test_a_conversation_run_headless_keeps_its_answer_and_leaves_no_empty_output(
        start_sim: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A notebook executed by nbclient, as papermill or nbconvert --execute do. Each answer takes over a second
    # (20 tokens/s), so the twin's wait line shows: it must end as a one-line record, not as an emptied
    # output the saved notebook keeps, and the answer itself must be in the saved notebook as text.
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    from tests.support.kernels import REPO

    sim = start_sim(OMNI_MODEL, "--tokens-per-second", "20")
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    nb = new_notebook(cells=[
        new_code_cell(f"import vomni_nb\ntalk = vomni_nb.Conversation(server={sim.url!r})\n"
                      "first = talk.send('What is a lighthouse?')"),
        new_code_cell("talk.send('Who keeps it?')"),
    ])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(nb, tmp_path / "talk.ipynb")
    saved = nbformat.read(tmp_path / "talk.ipynb", as_version=4)
    assigned, shown = saved.cells[0].outputs, saved.cells[1].outputs
    assert all(any(out.get("data", {}).values()) for out in assigned + shown), "an empty output was saved"
    assert [out.output_type for out in assigned] == ["display_data"]
    assert re.fullmatch(r"✓ an answer on \S+ in \d+\.\d s", assigned[0].data["text/plain"])
    assert [out.output_type for out in shown] == ["display_data", "execute_result"]
    answer = shown[1].data
    assert answer["text/markdown"] == answer["text/plain"] and 'You asked: "Who keeps it?"' in answer["text/plain"]
    assert shown[1].metadata["vomni_nb"]["kind"] == "chat"
