"""Speech that plays while it is generated, ending as the static ``<audio controls>`` output of the result.

Rule 1: one output (one display id) per stream. ``start`` shows the live view; ``finish(result)`` or
        ``fail(error)`` replaces it with a static bundle: the result's own (``<audio controls>`` +
        ``text/plain`` + its metadata), or a status line with what arrived. Exactly one of them ends it,
        so a saved notebook, nbconvert or GitHub never meets a widget that no longer exists.
Rule 2: the live view is chosen by ``_frontend.detect_mode`` and degrades, never breaks: the widget
        bundle carries a text status line for front ends without a widget manager, and headless runs get
        an updated status line instead of a widget.
Rule 3: audio is sent as it arrives; pieces shorter than ``min_chunk_s`` are joined first, so a server
        that streams tiny frames does not flood the front end with messages.
"""

from __future__ import annotations

import base64
import html
import io
import time
import uuid
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from vomni_nb.widgets._frontend import Bundle, Metadata, Mode, Sink, detect_mode, ipython_sink

if TYPE_CHECKING:
    from vomni_nb.widgets._widget import SpeechPlayerWidget

__all__ = ["LiveSpeechPlayer", "play_stream", "aplay_stream", "AudioEventStream", "AsyncAudioEventStream"]

R = TypeVar("R", covariant=True)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class AudioEventStream(Protocol[R]):
    """What ``play_stream`` needs: events (audio ones carry ``pcm``, ``sample_rate``, ``channels``) and a result."""

    def __iter__(self) -> Iterator[Any]: ...

    def finish(self) -> R: ...


class AsyncAudioEventStream(Protocol[R]):
    """What ``aplay_stream`` needs: the async twin of :class:`AudioEventStream`."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    def finish(self) -> Awaitable[R]: ...


def _wav(pcm: bytes, sample_rate: int, channels: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
    return out.getvalue()


def _bundle_of(obj: object) -> tuple[Bundle, Metadata]:
    """The object's own display bundle (``_repr_mimebundle_`` as IPython would call it), text/plain always present."""
    method = getattr(obj, "_repr_mimebundle_", None)
    produced = method() if callable(method) else None
    data, metadata = produced if isinstance(produced, tuple) else (produced or {}, {})
    data = dict(data)
    data.setdefault("text/plain", repr(obj))
    return data, dict(metadata or {})


class LiveSpeechPlayer:
    """One live output for streamed speech: ``start()``, ``feed(pcm)`` per chunk, then ``finish(result)``.

    ``mode`` is ``"widget"`` (the Web Audio player), ``"status"`` (a text line updated at most every
    ``interval`` seconds), ``"plain"`` (a line at the start and the result at the end: terminal IPython)
    or ``"none"`` (show nothing); ``None`` guesses from the front end. ``sink`` and ``clock`` are for tests.
    """

    def __init__(
        self,
        *,
        title: str = "speech",
        mode: Mode | None = None,
        autoplay: bool = True,
        interval: float = 0.1,
        min_chunk_s: float = 0.05,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.title = title
        self.mode: Mode = mode or detect_mode()
        self.autoplay = autoplay
        self.interval = interval
        self.min_chunk_s = min_chunk_s
        self.stream_id = uuid.uuid4().hex
        self.sink = sink or ipython_sink(self.mode)
        self._clock = clock
        self._widget: SpeechPlayerWidget | None = None
        self._started_at: float | None = None
        self._last_status = float("-inf")
        self._pcm = bytearray()  # what arrived, for a partial player if the stream fails
        self._pending = bytearray()  # not yet sent to the widget (Rule 3)
        self._sample_rate = 24000
        self._channels = 1
        self._note = ""
        self.finished = False

    def __repr__(self) -> str:
        state = "finished" if self.finished else "live" if self._started_at is not None else "not started"
        return f"LiveSpeechPlayer({self.title!r}, mode={self.mode}, {state}, {self.received_s:.2f} s received)"

    @property
    def received_s(self) -> float:
        return len(self._pcm) / (2 * self._channels * self._sample_rate)

    def _status(self, symbol: str, text: str) -> Bundle:
        line = f"{symbol} {self.title}: {text}"
        body = f"<b>{html.escape(self.title)}</b>: {html.escape(text)}"
        return {"text/plain": line, "text/html": f"<div style='font-family:monospace;padding:2px 0'>{symbol} {body}</div>"}

    def _streaming_text(self) -> str:
        elapsed = self._clock() - (self._started_at or self._clock())
        return f"receiving speech… {self.received_s:.1f} s of audio after {elapsed:.1f} s" + (
            f" ({self._note})" if self._note else "")

    def start(self) -> None:
        """Show the live output (idempotent)."""
        if self._started_at is not None:
            return
        self._started_at = self._clock()
        if self.mode == "widget":
            self._widget = self._make_widget()
            if self._widget is None:
                self.mode = "status"
        if self._widget is not None:
            data = self._status("♪", "streaming speech; the audio player appears here when the stream ends")
            data[WIDGET_MIME] = {"version_major": 2, "version_minor": 1, "model_id": self._widget.model_id}
            self.sink.show(data, {})
        elif self.mode == "plain":
            self.sink.show(self._status("♪", "streaming speech…"), {})
        else:
            self.sink.show(self._status("♪", self._streaming_text()), {})
        self._last_status = self._clock()

    def _make_widget(self) -> SpeechPlayerWidget | None:
        try:
            from vomni_nb.widgets._widget import SpeechPlayerWidget
        except ImportError:  # anywidget missing from a hand-made environment: the status line still works
            return None
        return SpeechPlayerWidget(
            stream_id=self.stream_id, title=self.title, sample_rate=self._sample_rate,
            channels=self._channels, autoplay=self.autoplay,
        )

    def feed(self, pcm: bytes, *, sample_rate: int | None = None, channels: int | None = None) -> None:
        """Add a piece of 16-bit little-endian PCM (whole frames) as it arrives; starts the output if needed."""
        if self.finished:
            raise RuntimeError("this LiveSpeechPlayer has finished; start a new one for another stream")
        if self._pcm and ((sample_rate and sample_rate != self._sample_rate) or (channels and channels != self._channels)):
            self._flush()
        self._sample_rate = sample_rate or self._sample_rate
        self._channels = channels or self._channels
        self.start()
        self._pcm += pcm
        self._pending += pcm
        if len(self._pending) >= self.min_chunk_s * self._sample_rate * 2 * self._channels:
            self._flush()
        if self.mode == "status" and self._clock() - self._last_status >= self.interval:
            self.sink.update(self._status("♪", self._streaming_text()), {})
            self._last_status = self._clock()

    def _flush(self) -> None:
        if self._widget is not None and self._pending:
            self._widget.send_chunk(bytes(self._pending), sample_rate=self._sample_rate, channels=self._channels)
        self._pending.clear()

    def take(self, event: Any) -> None:
        """One stream event (an ``AudioDelta``): decoded PCM plays now; compressed audio is noted once and
        plays when the stream ends."""
        pcm = getattr(event, "pcm", None)
        if pcm:
            self.feed(pcm, sample_rate=getattr(event, "sample_rate", None), channels=getattr(event, "channels", None))
        elif getattr(event, "raw", b"") and not self.noted:
            self.note("compressed audio: it plays when the stream ends (ask for pcm or wav to hear it live)")

    @property
    def noted(self) -> bool:
        return bool(self._note)

    def note(self, text: str) -> None:
        """A short remark shown while streaming (e.g. "compressed audio: plays when the stream ends")."""
        self._note = text
        self.start()
        if self._widget is not None:
            self._widget.note(text)
        elif self.mode == "status":
            self.sink.update(self._status("♪", self._streaming_text()), {})
            self._last_status = self._clock()

    def finish(self, result: object) -> None:
        """Replace the live output with ``result``'s static bundle (its ``<audio controls>`` player)."""
        if self.finished:
            return
        self.start()
        self._flush()
        data, metadata = _bundle_of(result)
        if "text/html" in data:
            # The marker lets the live view find this player and hand over its position (player.js, Rule 3).
            data["text/html"] = f'<div data-vomni-speech="{self.stream_id}">{data["text/html"]}</div>'
        if self._widget is not None:
            self._widget.end()
        self._end(data, metadata)

    def fail(self, error: BaseException) -> None:
        """Replace the live output with a status line and a player of what arrived; the caller re-raises."""
        if self.finished:
            return
        self.start()
        reason = type(error).__name__  # the message may quote server text; the traceback shows it anyway
        text = f"stopped after {self.received_s:.1f} s of audio ({reason})"
        data = self._status("✗", text)
        if self._pcm:
            wav = _wav(bytes(self._pcm), self._sample_rate, self._channels)
            source = "data:audio/wav;base64," + base64.b64encode(wav).decode("ascii")
            data["text/html"] += f'<audio controls src="{source}"></audio>'
        if self._widget is not None:
            self._widget.abort(text)
        self._end(data, {"vomni_nb": {"kind": "speech", "partial": True, "received_s": round(self.received_s, 3)}})

    def _end(self, data: Bundle, metadata: Metadata) -> None:
        self.finished = True
        self.sink.update(data, metadata)
        if self._widget is not None:
            # After the update: the view goes first (and hands over), then its model and the layout
            # model every DOMWidget opens beside it, so no comm outlives the stream.
            layout = getattr(self._widget, "layout", None)
            self._widget.close()
            if layout is not None:
                layout.close()
            self._widget = None


def _player_for(title: str, live: bool | None, autoplay: bool, player: LiveSpeechPlayer | None) -> LiveSpeechPlayer:
    if player is not None:
        return player
    mode: Mode | None = None if live is None else ("widget" if live else "status")
    return LiveSpeechPlayer(title=title, mode=mode, autoplay=autoplay)


def play_stream(
    stream: AudioEventStream[R],
    *,
    title: str = "speech",
    live: bool | None = None,
    autoplay: bool = True,
    player: LiveSpeechPlayer | None = None,
) -> R:
    """Play a speech stream while it arrives; the output ends as the result's static player. Returns the result.

    ``stream`` is what ``OmniClient.speak_stream(text, response_format="pcm" or "wav")`` returns (any
    iterable of events whose audio events carry ``pcm`` / ``sample_rate`` / ``channels`` and that has
    ``finish()`` works, a spoken ``chat_stream`` too). ``live=None`` picks the view from the front end:
    the Web Audio player where a person is watching, a text status line in headless runs; ``True`` or
    ``False`` forces one. The result is already displayed: assign it (or end the line with ``;``).
    An error or Ctrl-C ends the output with a status line and a player of what arrived, then propagates.
    """
    player = _player_for(title, live, autoplay, player)
    player.start()
    try:
        for event in stream:
            player.take(event)
        result = stream.finish()
    except BaseException as exc:
        player.fail(exc)
        raise
    player.finish(result)
    return result


async def aplay_stream(
    stream: AsyncAudioEventStream[R],
    *,
    title: str = "speech",
    live: bool | None = None,
    autoplay: bool = True,
    player: LiveSpeechPlayer | None = None,
) -> R:
    """:func:`play_stream` for ``AsyncOmniClient.speak_stream`` (``async for`` the events, ``await finish()``);
    cancelling the task ends the output like Ctrl-C does."""
    player = _player_for(title, live, autoplay, player)
    player.start()
    try:
        async for event in stream:
            player.take(event)
        result = await stream.finish()
    except BaseException as exc:
        player.fail(exc)
        raise
    player.finish(result)
    return result
