"""LiveSpeechPlayer and play_stream without a kernel: what the one output shows, when, and how it ends.

A recording sink stands for the display handle and an injected clock for time. The widget side is
recorded through ``_make_widget`` returning a recorder (what goes over the comm is checked for real in
test_player_kernel.py).
"""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
import tomllib
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import vomni_nb.widgets
from vomni_nb.streams import AudioDelta, TextDelta
from vomni_nb.widgets import LiveSpeechPlayer, aplay_stream, play_stream

REPO = Path(__file__).resolve().parents[2]
SECOND = b"\x01\x00" * 24000  # one second of 24 kHz mono PCM16
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    def show(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.calls.append(("show", data, metadata))

    def update(self, data: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.calls.append(("update", data, metadata))

    @property
    def last(self) -> dict[str, Any]:
        return self.calls[-1][1]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Result:
    """Displays itself like a SpeechResult: HTML player, text, provenance metadata."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, str], dict[str, Any]]:
        return {"text/plain": "Result()", "text/html": "<audio controls src='data:audio/wav;base64,AA'></audio>"}, {
            "vomni_nb": {"kind": "speech"}}


class Stream:
    def __init__(self, events: list[Any], error: BaseException | None = None) -> None:
        self.events = events
        self.error = error

    def __iter__(self) -> Iterator[Any]:
        yield from self.events
        if self.error is not None:
            raise self.error

    def finish(self) -> Result:
        return Result()


class RecordingWidget:
    model_id = "model-1"

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []
        self.closed = False

    def send_chunk(self, pcm: bytes, *, sample_rate: int, channels: int) -> None:
        self.sent.append(("chunk", len(pcm)))

    def note(self, text: str) -> None:
        self.sent.append(("note", 0))

    def end(self) -> None:
        self.sent.append(("end", 0))

    def abort(self, note: str) -> None:
        self.sent.append(("abort", 0))

    def close(self) -> None:
        self.closed = True


def _player(mode: str = "status", **kwargs: Any) -> tuple[LiveSpeechPlayer, RecordingSink, Clock]:
    sink, clock = RecordingSink(), Clock()
    return LiveSpeechPlayer(title="t", mode=mode, sink=sink, clock=clock, **kwargs), sink, clock  # type: ignore[arg-type]


def test_public_names_and_lazy_imports() -> None:
    assert vomni_nb.widgets.__all__ == [
        "AsyncAudioEventStream", "AudioEventStream", "LiveSpeechPlayer", "ServerPanel", "Studio", "aplay_stream",
        "play_stream"]
    code = ("import sys, vomni_nb.widgets; "
            "print(sorted(m for m in ('IPython', 'ipywidgets', 'anywidget') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_the_wheel_carries_the_player_module() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["vomni_nb.widgets"]
    assets = [p for p in (REPO / "vomni_nb" / "widgets").iterdir() if p.suffix not in (".py", ".pyc") and p.is_file()]
    assert any(p.name == "player.js" for p in assets)
    assert all(any(p.match(pattern) for pattern in patterns) for p in assets)


def test_status_line_is_throttled_and_ends_as_the_static_player() -> None:
    player, sink, clock = _player(interval=0.1)
    player.start()
    player.feed(SECOND, sample_rate=24000)
    clock.now += 0.05
    player.feed(SECOND)  # within the interval: not shown
    clock.now += 0.15
    player.feed(SECOND)
    assert [kind for kind, _, _ in sink.calls] == ["show", "update"]
    assert sink.last["text/plain"] == "♪ t: receiving speech… 3.0 s of audio after 0.2 s"
    player.finish(Result())
    kind, data, metadata = sink.calls[-1]
    assert kind == "update" and data["text/plain"] == "Result()" and metadata == {"vomni_nb": {"kind": "speech"}}
    assert data["text/html"].startswith(f'<div data-vomni-speech="{player.stream_id}"><audio controls')
    assert player.finished and "finished" in repr(player)
    with pytest.raises(RuntimeError, match="finished"):
        player.feed(SECOND)


def test_failure_shows_what_arrived_and_never_the_error_text() -> None:
    player, sink, _ = _player()
    player.feed(SECOND[:24000], sample_rate=24000)  # half a second
    player.fail(RuntimeError("server said: key sk-secret-123"))
    data = sink.last
    assert data["text/plain"] == "✗ t: stopped after 0.5 s of audio (RuntimeError)"
    assert "sk-secret" not in str(sink.calls)
    wav_b64 = data["text/html"].split('src="data:audio/wav;base64,')[1].split('"')[0]
    with wave.open(io.BytesIO(base64.b64decode(wav_b64))) as reader:
        assert (reader.getnframes(), reader.getframerate(), reader.getnchannels()) == (12000, 24000, 1)
    assert sink.calls[-1][2]["vomni_nb"]["partial"] is True


def test_failure_before_any_audio_has_no_player() -> None:
    player, sink, _ = _player()
    player.fail(KeyboardInterrupt())
    assert "<audio" not in sink.last["text/html"] and "(KeyboardInterrupt)" in sink.last["text/plain"]


def test_play_stream_feeds_audio_events_and_returns_the_result() -> None:
    sink = RecordingSink()
    player = LiveSpeechPlayer(title="t", mode="status", sink=sink)
    events = [TextDelta("hi"), AudioDelta(SECOND, 24000, 1, SECOND), AudioDelta(SECOND, 24000, 1, SECOND)]
    result = play_stream(Stream(events), player=player)
    assert isinstance(result, Result)
    assert player.received_s == 2.0
    assert sink.last["text/plain"] == "Result()"


class AsyncStream:
    def __init__(self, events: list[Any]) -> None:
        self.events = events

    async def __aiter__(self) -> AsyncIterator[Any]:
        for event in self.events:
            await asyncio.sleep(0)
            yield event

    async def finish(self) -> Result:
        return Result()


def test_aplay_stream_plays_an_async_stream() -> None:
    sink = RecordingSink()
    player = LiveSpeechPlayer(title="t", mode="status", sink=sink)
    result = asyncio.run(aplay_stream(AsyncStream([AudioDelta(SECOND, 24000, 1, SECOND)]), player=player))
    assert isinstance(result, Result) and player.received_s == 1.0 and sink.last["text/plain"] == "Result()"


def test_play_stream_ends_the_output_and_reraises() -> None:
    sink = RecordingSink()
    player = LiveSpeechPlayer(title="t", mode="status", sink=sink)
    with pytest.raises(KeyboardInterrupt):
        play_stream(Stream([AudioDelta(SECOND, 24000, 1, SECOND)], KeyboardInterrupt()), player=player)
    assert sink.last["text/plain"].startswith("✗ t: stopped after 1.0 s")


def test_compressed_audio_is_noted_and_plays_at_the_end() -> None:
    sink = RecordingSink()
    player = LiveSpeechPlayer(title="t", mode="status", sink=sink, interval=0, clock=Clock())
    play_stream(Stream([AudioDelta(None, 24000, 1, b"ID3..."), AudioDelta(None, 24000, 1, b"...")]), player=player)
    notes = [data["text/plain"] for _, data, _ in sink.calls if "compressed audio" in data["text/plain"]]
    assert notes == ["♪ t: receiving speech… 0.0 s of audio after 0.0 s (compressed audio: it plays when the stream "
                     "ends (ask for pcm or wav to hear it live))"]
    assert player.received_s == 0
    assert sink.last["text/plain"] == "Result()"


@pytest.mark.parametrize(("setup", "mode"), [
    ("", "none"),  # plain Python
    ("from IPython.core.interactiveshell import InteractiveShell; InteractiveShell.instance(); ", "plain"),  # terminal
])
def test_the_view_follows_the_process(setup: str, mode: str) -> None:
    # In a fresh process: other tests leave an IPython shell behind in this one.
    code = f"{setup}from vomni_nb.widgets._frontend import detect_mode; print(detect_mode())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == mode


def test_mode_none_shows_nothing_and_still_returns_the_result() -> None:
    player = LiveSpeechPlayer(title="t", mode="none")
    assert isinstance(play_stream(Stream([AudioDelta(SECOND, 24000, 1, SECOND)]), player=player), Result)
    assert player.finished and player.received_s == 1.0


class WidgetPlayer(LiveSpeechPlayer):
    def _make_widget(self) -> Any:
        self.recorder = RecordingWidget()
        return self.recorder


def test_tiny_pieces_are_joined_before_they_are_sent() -> None:
    sink = RecordingSink()
    player = WidgetPlayer(title="t", mode="widget", sink=sink, min_chunk_s=0.05)
    player.start()
    shown = sink.calls[0][1]
    assert shown["application/vnd.jupyter.widget-view+json"]["model_id"] == "model-1"
    assert shown["text/plain"].startswith("♪ t: streaming speech")  # what a front end without widgets shows
    piece = b"\x00\x00" * 240  # 10 ms
    for _ in range(12):
        player.feed(piece, sample_rate=24000)
    assert player.recorder.sent == [("chunk", 2400)] * 2  # 50 ms each; 20 ms still pending
    player.feed(piece, sample_rate=16000)  # a new rate: what is pending goes out at the old one first
    assert player.recorder.sent[-1] == ("chunk", 960)
    player.finish(Result())
    assert player.recorder.sent[-2:] == [("chunk", 480), ("end", 0)]
    assert player.recorder.closed
    assert len(sink.calls) == 2  # the widget output is never re-rendered while it plays


def test_without_anywidget_the_widget_view_becomes_the_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # A hand-made environment without anywidget (a missing module, which no installed part can stand for).
    monkeypatch.setitem(sys.modules, "anywidget", None)
    monkeypatch.delitem(sys.modules, "vomni_nb.widgets._widget", raising=False)
    player, sink, _ = _player(mode="widget")
    player.feed(SECOND, sample_rate=24000)
    assert player.mode == "status"
    assert [kind for kind, _, _ in sink.calls] == ["show"] and WIDGET_MIME not in sink.last
    assert sink.last["text/plain"] == "♪ t: receiving speech… 0.0 s of audio after 0.0 s"


def test_a_note_goes_to_the_widget_and_a_terminal_shows_none() -> None:
    compressed = [AudioDelta(None, 24000, 1, b"ID3...")]
    player = WidgetPlayer(title="t", mode="widget", sink=RecordingSink())
    play_stream(Stream(compressed), player=player)
    assert player.recorder.sent == [("note", 0), ("end", 0)]
    sink = RecordingSink()
    play_stream(Stream(compressed), player=LiveSpeechPlayer(title="t", mode="plain", sink=sink))
    assert [data["text/plain"] for _, data, _ in sink.calls] == ["♪ t: streaming speech…", "Result()"]


def test_an_ended_player_stays_ended() -> None:
    player, sink, _ = _player()
    player.finish("spoken text, no player")  # a result with no HTML of its own is shown as its text
    assert sink.last == {"text/plain": "'spoken text, no player'"}
    calls = list(sink.calls)
    player.finish(Result())
    player.fail(RuntimeError("late"))
    assert sink.calls == calls


class FailingAsyncStream(AsyncStream):
    async def __aiter__(self) -> AsyncIterator[Any]:
        async for event in super().__aiter__():
            yield event
        raise ConnectionError("the server went away")


def test_aplay_stream_ends_the_output_and_reraises() -> None:
    sink = RecordingSink()
    player = LiveSpeechPlayer(title="t", mode="status", sink=sink)
    with pytest.raises(ConnectionError, match="went away"):
        asyncio.run(aplay_stream(FailingAsyncStream([AudioDelta(SECOND, 24000, 1, SECOND)]), player=player))
    assert sink.last["text/plain"] == "✗ t: stopped after 1.0 s of audio (ConnectionError)"
    assert '<audio controls src="data:audio/wav;base64,' in sink.last["text/html"] and player.finished
