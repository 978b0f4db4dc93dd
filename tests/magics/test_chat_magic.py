"""%%omni_chat in an in-process IPython shell against real simulators: Markdown answers with their provenance,
a conversation that goes on across cells until --new, spoken answers, attached media, settings, and every
bad input refused before a request."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from PIL import Image

from tests.support.magics import generations, last_output, outputs_of, rendered
from tests.support.sims import OMNI_MODEL, TTS_MODEL
from vomni_nb.conversation import default_conversation
from vomni_nb.errors import InsufficientStorageError, StreamError, WrongServerError
from vomni_nb.results import ChatResult
from vomni_nb.server import default_manager


def _run(shell: Any, line: str, cell: str = "What is a lighthouse?") -> Any:
    with capture_output() as captured:
        shell.run_cell_magic("omni_chat", line, cell)
    return captured


def _png(colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("stream", ["", "--no-stream"])
def test_the_answer_is_static_markdown_with_its_provenance(magic_shell: Any, omni_server: Any, stream: str) -> None:
    default_manager().attach(omni_server.url)
    output = last_output(_run(magic_shell, f"--new {stream} --system 'Be brief.' --out answer"))
    answer = magic_shell.user_ns["answer"]
    assert isinstance(answer, ChatResult) and answer.text.startswith("[vomni-sim]")
    assert set(output.data) == {"text/plain", "text/markdown"}
    assert output.data["text/markdown"] == output.data["text/plain"] == answer.text  # the whole text, no cursor
    record = output.metadata["vomni_nb"]
    assert record["kind"] == "chat" and record["model"] == OMNI_MODEL and record["server_url"] == omni_server.url
    assert record["prompt"] == "What is a lighthouse?" and record["params"]["modalities"] == ["text"]
    assert record["params"]["system"] == "Be brief."
    assert "messages" not in record["params"] and "data:" not in str(record)  # the turn, not the whole exchange


def test_the_conversation_goes_on_across_cells_until_new(magic_shell: Any, omni_server: Any) -> None:
    default_manager().attach(omni_server.url)
    # --no-stream: a whole answer carries the server's token counts, which show what it was sent.
    _run(magic_shell, "--new --no-stream --system 'You keep lighthouses.' --out first;", "Who are you?")
    _run(magic_shell, "--no-stream --out second;", "And what do you do at night?")
    first, second = magic_shell.user_ns["first"], magic_shell.user_ns["second"]
    assert second.usage["prompt_tokens"] > first.usage["completion_tokens"]  # the server got the first turn too
    talk = default_conversation()
    assert len(talk) == 2 and [m["role"] for m in talk.messages] == ["system", "user", "assistant", "user",
                                                                     "assistant"]
    assert talk.messages[2]["content"] == first.text
    _run(magic_shell, "--new --no-stream --out third;", "Who are you?")
    assert magic_shell.user_ns["third"].usage["prompt_tokens"] == first.usage["prompt_tokens"] - 4  # no system now
    assert len(default_conversation()) == 1 and default_conversation().messages[0]["role"] == "user"


def test_a_spoken_answer_streams_into_a_player_and_ends_static(magic_shell: Any, omni_server: Any) -> None:
    default_manager().attach(omni_server.url)
    outputs = outputs_of(_run(magic_shell, "--new --voice ethan --out spoken", "Say hello."))
    recorded = [out for out in outputs if "vomni_nb" in out.metadata]
    text, player = recorded[-2], recorded[-1]
    assert set(text.data) == {"text/plain", "text/markdown"}  # the audio is not embedded twice
    assert text.metadata["vomni_nb"]["params"]["modalities"] == ["text", "audio"]
    assert text.metadata["vomni_nb"]["params"]["voice"] == "ethan"
    assert text.metadata["vomni_nb"]["params"]["audio"] == {"format": "wav"}  # streamed: WAV, playable as it comes
    assert '<audio controls src="data:audio/' in player.data["text/html"]  # a WAV is embedded as MP3 (_embeds)
    assert "autoplay" not in player.data["text/html"] and "loop" not in player.data["text/html"]
    assert magic_shell.user_ns["spoken"].audio is not None


def test_a_spoken_answer_without_streaming_is_embedded_as_mp3(magic_shell: Any, omni_server: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    default_manager().attach(omni_server.url)
    magic_shell.run_line_magic("config", "VomniMagics.default_voice = 'chelsie'")
    output = last_output(_run(magic_shell, "--new --no-stream --modalities text,audio --out spoken"))
    assert '<audio controls src="data:audio/mpeg;base64,' in output.data["text/markdown"]  # one rendering
    assert output.metadata["vomni_nb"]["params"]["voice"] == "chelsie"
    assert output.metadata["vomni_nb"]["params"]["audio"] == {"format": "mp3"}
    _run(magic_shell, "--out plain;")  # the default voice is for spoken answers only
    assert "voice" not in magic_shell.user_ns["plain"].params


def test_media_come_from_a_variable_a_path_or_a_data_url(magic_shell: Any, omni_server: Any, tmp_path: Path) -> None:
    default_manager().attach(omni_server.url)
    picture = tmp_path / "blue.png"
    picture.write_bytes(_png("blue"))
    magic_shell.user_ns.update(red=_png("red"), where=str(picture))
    data_url = "data:image/png;base64," + base64.b64encode(_png("lime")).decode()
    _run(magic_shell, f"--new --image red --image {picture} --image where --image {data_url} --out seen;",
         "What do you see in {where}?")
    text = magic_shell.user_ns["seen"].text
    assert text.count("a 8x6 image") == 4 and "(mostly red)" in text and "(mostly blue)" in text
    assert f"in {picture}?" in default_conversation().messages[0]["content"][0]["text"]  # {name} filled


BAD_LINES = [
    ("--frobnicate", "hi", "unrecognized arguments"),
    ("--modalities text,video", "hi", "modalities must be some of"),
    ("--modalities ''", "hi", "modalities must be some of"),
    ("--voice ethan --modalities text", "hi", "A voice is for spoken answers"),
    ("--voice ''", "hi", "voice must be a speaker name"),
    ("--image nowhere.png", "hi", "--image 'nowhere.png': no such file"),
    ("--image no_such_variable", "hi", "no such file and no variable 'no_such_variable'"),
    ("--image a_number", "hi", "cannot use float as image input"),
    ("--audio nowhere.wav", "hi", "--audio 'nowhere.wav': no such file"),
    ("--image #12", "hi", "no history yet|History #12"),
    ("--system ''", "hi", "--system is empty"),
    ("--model a,b", "hi", "--model takes one value"),
    ("--out 1x", "hi", "--out takes a variable name"),
    ("", "  ", "The cell is empty"),
    ("", "about {no_such_name}", "no variable 'no_such_name'"),
]


@pytest.mark.parametrize(("line", "cell", "reason"), BAD_LINES, ids=[line or cell.strip() or "empty"
                                                                       for line, cell, _ in BAD_LINES])
def test_every_bad_input_is_a_usage_error_before_any_request(magic_shell: Any, omni_server: Any, line: str, cell: str,
                                                             reason: str) -> None:
    default_manager().attach(omni_server.url)
    magic_shell.user_ns["a_number"] = 7.5  # an int would be a history id
    before = generations(omni_server), len(default_conversation())
    with pytest.raises(UsageError, match=reason):
        magic_shell.run_cell_magic("omni_chat", line, cell)
    assert (generations(omni_server), len(default_conversation())) == before


def test_help_prints_the_docstring_and_every_flag(magic_shell: Any) -> None:
    with capture_output() as captured:
        magic_shell.run_cell("%%omni_chat?")
    text = captured.stdout
    assert "Chat with the model" in text and "vomni_nb.chat(" in text and "vomni_nb.Conversation()" in text
    for flag in ("--system", "--image", "--audio", "--modalities", "--voice", "--no-stream", "--new", "--model",
                 "--server", "--out", "--save", "--no-log"):
        assert flag in text, flag


def test_a_broken_stream_is_a_short_error_and_the_conversation_stays(magic_shell: Any, omni_server: Any,
                                                                    start_sim: Any) -> None:
    default_manager().attach(omni_server.url)
    _run(magic_shell, "--new --out first;", "First question.")
    broken = start_sim(OMNI_MODEL, "--midstream-error-after", "3", "--tokens-per-second", "2000")
    with capture_output() as captured, pytest.raises(StreamError) as caught:
        magic_shell.run_cell_magic("omni_chat", f"--server {broken.url}", "Second question.")
    assert len(rendered(caught.value).splitlines()) <= 3  # cause, advice, the cell's line
    assert outputs_of(captured)[-1].data["text/plain"].endswith("✗ (stopped: StreamError)")
    assert len(default_conversation()) == 1  # the failed turn was not added


def test_chat_never_goes_to_a_speech_server(magic_shell: Any, omni_server: Any, tts_server: Any) -> None:
    default_manager().attach(tts_server.url)
    default_manager().attach(omni_server.url)
    default_manager().use(TTS_MODEL)
    _run(magic_shell, "--new --out answer;")
    assert magic_shell.user_ns["answer"].model == OMNI_MODEL
    before = generations(tts_server)
    with pytest.raises(WrongServerError, match="cannot chat"):
        magic_shell.run_cell_magic("omni_chat", f"--server {tts_server.url}", "hi")
    assert generations(tts_server) == before


def test_a_server_error_before_the_answer_began_leaves_no_line_behind(magic_shell: Any, start_sim: Any) -> None:
    full = start_sim(OMNI_MODEL, "--rate-507", "1")
    default_manager().attach(full.url)
    with capture_output() as captured, pytest.raises(InsufficientStorageError) as caught:
        magic_shell.run_cell_magic("omni_chat", "--new", "hi")
    assert len(rendered(caught.value).splitlines()) == 2 and outputs_of(captured) == []
