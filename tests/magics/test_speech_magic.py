"""%%omni_speak and %omni_voice in an in-process IPython shell against real simulators: static players with
their provenance, streaming and batches, settings, routing, and every bad input refused before a request."""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from tests.support.magics import generations, last_output, outputs_of, rendered
from tests.support.sims import IMAGE_MODEL, TTS_MODEL
from vomni_nb.errors import BatchItemError, InsufficientStorageError, NotFoundError, ServerError, ServerManagerError
from vomni_nb.results import SpeechResult
from vomni_nb.server import default_manager
from vomni_nb.speech import SpeechBatch

BASE_TTS_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"


def _run(shell: Any, line: str, cell: str = "Hello from the lighthouse.") -> Any:
    with capture_output() as captured:
        shell.run_cell_magic("omni_speak", line, cell)
    return captured


def _recorded(outputs: list[Any]) -> list[Any]:
    return [out for out in outputs if "vomni_nb" in out.metadata]


def test_speech_is_a_static_player_with_its_provenance(magic_shell: Any, tts_server: Any) -> None:
    default_manager().attach(tts_server.url)
    output = last_output(_run(magic_shell, "--voice vivian --speed 1.25 --language English --out hello"))
    assert set(output.data) == {"text/plain", "text/html"}
    html = output.data["text/html"]
    assert '<audio controls src="data:audio/' in html  # WAV, or MP3 when that is smaller (_embeds)
    assert "autoplay" not in html and "loop" not in html
    record = output.metadata["vomni_nb"]
    assert record["kind"] == "speech" and record["model"] == TTS_MODEL and record["server_url"] == tts_server.url
    assert record["params"]["voice"] == "vivian" and record["params"]["speed"] == 1.25
    assert record["params"]["input"] == "Hello from the lighthouse." and record["params"]["response_format"] == "wav"
    assert record["duration_s"] > 0 and "voice='vivian'" in output.data["text/plain"]
    speech = magic_shell.user_ns["hello"]
    assert isinstance(speech, SpeechResult) and speech.voice == "vivian"


def test_stream_plays_then_leaves_one_static_player(magic_shell: Any, tts_server: Any) -> None:
    default_manager().attach(tts_server.url)
    before = generations(tts_server)
    captured = _run(magic_shell, "--stream --out live", "Streamed while it is spoken, then kept.")
    assert generations(tts_server) == before + 1
    recorded = _recorded(outputs_of(captured))
    assert len(recorded) == 1, "the player's static output is the only result shown (not shown again by the magic)"
    assert recorded[0].data["text/plain"].startswith("SpeechResult(pcm")
    assert '<audio controls src="data:audio/' in recorded[0].data["text/html"]
    assert "autoplay" not in recorded[0].data["text/html"]
    assert recorded[0].metadata["vomni_nb"]["params"]["response_format"] == "pcm"
    assert magic_shell.user_ns["live"].text == "Streamed while it is spoken, then kept."


def test_batch_speaks_each_line_and_a_failed_one_stays_in_its_place(magic_shell: Any, tts_server: Any) -> None:
    default_manager().attach(tts_server.url)
    posts = tts_server.log().count("POST /v1/audio/speech/batch")
    captured = _run(magic_shell, "--batch --voice ryan --out lines", "First line.\n\n  [[fail]] second  \nThird line.")
    assert tts_server.log().count("POST /v1/audio/speech/batch") == posts + 1  # one request for every line
    output = last_output(captured)
    batch = magic_shell.user_ns["lines"]
    assert isinstance(batch, SpeechBatch) and len(batch) == 3 and len(batch.results) == 2
    assert isinstance(batch[1], BatchItemError) and [r.text for r in batch.results] == ["First line.", "Third line."]
    html = output.data["text/html"]
    assert html.startswith("<ol>") and html.count("<audio controls") == 2 and "✗" in html and "autoplay" not in html
    items = output.metadata["vomni_nb"]["items"]
    assert output.metadata["vomni_nb"]["kind"] == "speech_batch" and len(items) == 3
    assert items[0]["params"]["voice"] == "ryan" and "error" in items[1]


def test_text_is_filled_from_the_namespace_and_save_never_overwrites(magic_shell: Any, tts_server: Any,
                                                                     tmp_path: Path) -> None:
    default_manager().attach(tts_server.url)
    magic_shell.user_ns.update(name="Ada", tides={"high": "six"})
    for _ in range(2):
        _run(magic_shell, f"--save {tmp_path / 'out'} --out said;", "Hello {name}, high tide at {tides[high]}; ${{x}} stays")
    assert outputs_of(_run(magic_shell, "--out said;", "Quiet {name}")) == []
    assert magic_shell.user_ns["said"].text == "Quiet Ada"
    saved = sorted(path.suffix for path in (tmp_path / "out").iterdir() if path.suffix != ".json")  # and sidecars
    assert saved == [".wav", ".wav"]  # two files, none overwritten


def test_config_and_environment_set_the_default_voice_and_the_flag_wins(magic_shell: Any, tts_server: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    default_manager().attach(tts_server.url)
    monkeypatch.setenv("VOMNI_DEFAULT_VOICE", "eric")
    _run(magic_shell, "--out said;")
    assert magic_shell.user_ns["said"].voice == "eric"
    magic_shell.run_line_magic("config", "VomniMagics.default_voice = 'serena'")
    _run(magic_shell, "--out said;")
    assert magic_shell.user_ns["said"].voice == "serena"
    _run(magic_shell, "--voice dylan --out said;")
    assert magic_shell.user_ns["said"].voice == "dylan"


def test_a_seed_speaks_the_same_audio_again_and_is_recorded(magic_shell: Any, tts_server: Any) -> None:
    # The speech route takes a seed (a vLLM-Omni model extension), like the client's and the twin's speak.
    # (The simulator speaks with espeak-ng when it is installed, which ignores the seed: a real model does not,
    # so only "the same seed, the same audio" is asserted about the sound.)
    default_manager().attach(tts_server.url)
    first = last_output(_run(magic_shell, "--voice vivian --seed 7 --out first"))
    _run(magic_shell, "--voice vivian --seed 7 --out again;")
    _run(magic_shell, "--voice vivian --seed 7 --stream --format wav --out streamed;")
    said = magic_shell.user_ns
    assert first.metadata["vomni_nb"]["params"]["seed"] == 7 and said["first"].seed == 7  # sent, and recorded
    assert said["again"].audio == said["first"].audio and said["again"].recipe["seed"] == 7
    assert said["streamed"].params["seed"] == 7


def test_help_prints_the_docstrings_and_every_flag(magic_shell: Any) -> None:
    with capture_output() as captured:
        magic_shell.run_cell("%%omni_speak?")
    text = captured.stdout
    assert "Speak the text in the cell body" in text and "vomni_nb.speak(" in text
    for flag in ("--voice", "--format", "--speed", "--instructions", "--language", "--seed", "--stream", "--batch",
                 "--model", "--server", "--out", "--save", "--no-log"):
        assert flag in text, flag
    with capture_output() as captured:
        magic_shell.run_cell("%omni_voice?")
    assert "List, upload or delete the named voices" in captured.stdout and "--consent" in captured.stdout


BAD_LINES = [
    ("--frobnicate", "hi", "unrecognized arguments"),
    ("--format aac", "hi", "speech format must be one of"),
    ("--speed 9", "hi", "speed must be from 0.25"),
    ("--speed fast", "hi", "--speed takes a number"),
    ("--voice ''", "hi", "voice must be a voice name"),
    ("--stream --format mp3", "hi", "streamed speech must be wav or pcm"),
    ("--stream --speed 1.5", "hi", "Streamed speech plays at speed 1.0"),
    ("--batch --stream", "one\ntwo", "--batch and --stream do not go together"),
    ("--batch --seed 3", "one\ntwo", r"--batch takes no --seed: the server's batch route .* has no seed"),
    ("--seed soon", "hi", "--seed takes a whole number"),
    ("--seed 1,2", "hi", "--seed takes one value"),
    ("--seed 99999999999999999999", "hi", "seed must fit in 64 bits"),
    ("--model a,b", "hi", "--model takes one value"),
    ("--out 2x", "hi", "--out takes a variable name"),
    ("", "  \n ", "The cell is empty"),
    ("", "Hello {nobody_by_this_name}", "no variable 'nobody_by_this_name'"),
]


@pytest.mark.parametrize(("line", "cell", "reason"), BAD_LINES, ids=[line or cell.strip() or "empty"
                                                                       for line, cell, _ in BAD_LINES])
def test_every_bad_input_is_a_usage_error_before_any_request(magic_shell: Any, tts_server: Any, line: str, cell: str,
                                                             reason: str) -> None:
    default_manager().attach(tts_server.url)
    before = generations(tts_server)
    with pytest.raises(UsageError, match=reason):
        magic_shell.run_cell_magic("omni_speak", line, cell)
    assert generations(tts_server) == before


def test_speech_goes_to_the_server_that_speaks(magic_shell: Any, image_server: Any, tts_server: Any) -> None:
    default_manager().attach(image_server.url)
    default_manager().attach(tts_server.url)
    default_manager().use(IMAGE_MODEL)
    before = generations(image_server)
    _run(magic_shell, "--out said;")
    assert magic_shell.user_ns["said"].model == TTS_MODEL and generations(image_server) == before


def test_without_a_speech_server_it_says_what_to_start(magic_shell: Any, image_server: Any) -> None:
    default_manager().attach(image_server.url)
    with pytest.raises(ServerManagerError) as caught:
        magic_shell.run_cell_magic("omni_speak", "", "hi")
    text = rendered(caught.value)
    assert "no server can speak" in text and f"%omni_server start {TTS_MODEL} --sim" in text


def test_a_failed_generation_is_a_short_error_and_leaves_nothing_behind(magic_shell: Any, tts_server: Any) -> None:
    default_manager().attach(tts_server.url)
    with capture_output() as captured, pytest.raises(ServerError) as caught:
        magic_shell.run_cell_magic("omni_speak", "", "this one will [[fail]]")
    assert len(rendered(caught.value).splitlines()) <= 3 and rendered(caught.value).startswith("ServerError: 500")
    assert outputs_of(captured) == []


def _voice_requests(sim: Any) -> int:
    return sim.log().count("/v1/audio/voices")


def _tone(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    """A WAV voice sample (a hum: the simulator measures its pitch, nothing more)."""
    frames = b"".join(int(8000 * math.sin(2 * math.pi * 180 * i / rate)).to_bytes(2, "little", signed=True)
                      for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def test_voices_are_listed_uploaded_used_and_deleted(magic_shell: Any, start_sim: Any, tmp_path: Path) -> None:
    sim = start_sim(BASE_TTS_MODEL)  # a Base checkpoint speaks in uploaded (cloned) voices
    default_manager().attach(sim.url)
    sample = _tone(tmp_path / "me.wav")
    with capture_output() as captured:
        magic_shell.run_line_magic("omni_voice", f"upload narrator {sample} --consent 'recorded by myself'")
    assert outputs_of(captured)[-1].data["text/plain"].startswith("✓ voice 'narrator' uploaded")
    with capture_output() as captured:
        magic_shell.run_line_magic("omni_voice", "list")
    table = last_output(captured).data
    assert "narrator" in table["text/plain"] and "recorded by myself" in table["text/plain"] and "<table>" in table[
        "text/html"]
    assert "default" in table["text/plain"] and "built-in" in table["text/plain"]  # the built-in ones too
    _run(magic_shell, "--voice narrator --out mine;", "Now in my voice.")
    assert magic_shell.user_ns["mine"].voice == "narrator"
    with capture_output() as captured:
        magic_shell.run_line_magic("omni_voice", "delete narrator")
    assert last_output(captured).data["text/plain"] == "✓ voice 'narrator' deleted"
    with pytest.raises(NotFoundError) as caught:
        magic_shell.run_line_magic("omni_voice", "delete narrator")
    assert "not found" in rendered(caught.value) and len(rendered(caught.value).splitlines()) <= 3


BAD_VOICE_LINES = [
    ("", "the following arguments are required: action"),
    ("rename a b", "invalid choice: 'rename'"),
    ("list extra", "list takes no arguments"),
    ("delete", "delete takes 1 argument"),
    ("upload narrator", "upload takes 2 arguments"),
    ("upload narrator {sample}", "upload needs --consent TEXT"),
    ("upload narrator {sample} --consent '  '", "upload needs --consent TEXT"),
    ("upload narrator nowhere.wav --consent yes", "no such file"),
    ("upload narrator not_audio --consent yes", "cannot use float as audio input"),
    ("list --consent yes", "--consent and --ref-text are for upload"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_VOICE_LINES, ids=[line or "empty" for line, _ in BAD_VOICE_LINES])
def test_every_bad_voice_command_is_a_usage_error_before_any_request(magic_shell: Any, tts_server: Any, tmp_path: Path,
                                                                     line: str, reason: str) -> None:
    default_manager().attach(tts_server.url)
    sample = tmp_path / "sample.wav"
    sample.write_bytes(b"RIFF")
    magic_shell.user_ns["not_audio"] = 3.5  # an int would be a history id
    before = _voice_requests(tts_server)
    with pytest.raises(UsageError, match=reason):
        magic_shell.run_line_magic("omni_voice", line.format(sample=sample))
    assert _voice_requests(tts_server) == before


def test_a_stream_refused_before_it_began_leaves_no_output_behind(magic_shell: Any, start_sim: Any) -> None:
    full = start_sim(TTS_MODEL, "--rate-507", "1")
    default_manager().attach(full.url)
    with capture_output() as captured, pytest.raises(InsufficientStorageError) as caught:
        magic_shell.run_cell_magic("omni_speak", "--stream", "hi")
    assert len(rendered(caught.value).splitlines()) == 2 and outputs_of(captured) == []


def test_ref_audio_clones_the_voice_of_a_history_entry(magic_shell: Any, tts_server: Any, start_sim: Any) -> None:
    base = start_sim(BASE_TTS_MODEL)
    default_manager().attach(tts_server.url)
    _run(magic_shell, "--voice vivian --out sample;", "This is my voice sample.")
    sample_id = magic_shell.user_ns["sample"].history_id
    assert sample_id is not None
    _run(magic_shell, f"--server {base.url} --ref-audio #{sample_id} --ref-text 'This is my voice sample.' "
                      "--out cloned;", "Hello in my voice.")
    cloned = magic_shell.user_ns["cloned"]
    assert cloned.model == BASE_TTS_MODEL and cloned.params["ref_text"] == "This is my voice sample."
    import vomni_nb

    again = vomni_nb.speak("Hello in my voice.", server=base.url, ref_audio=magic_shell.user_ns["sample"],
                           ref_text="This is my voice sample.", log=False)
    assert again.audio == cloned.audio  # the history id and the result are the same sample
    before = generations(base)
    with pytest.raises(UsageError, match="ref_audio needs ref_text="):
        _run(magic_shell, f"--server {base.url} --ref-audio #{sample_id}", "Hello.")
    with pytest.raises(UsageError, match="--ref-audio 'nowhere.wav': no such file"):
        _run(magic_shell, f"--server {base.url} --ref-audio nowhere.wav --ref-text x", "Hello.")
    assert generations(base) == before
