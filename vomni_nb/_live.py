"""Streamed answers shown as they arrive: the views a twin hands to :func:`vomni_nb._twins.call_stream`.

Rules:

1. Text goes into the wait line's own output (one display handle): updated at most every ``interval``
   seconds (:class:`~vomni_nb.display.LiveLine`), and replaced at the end by the result's static bundle
   (``text/markdown`` + ``text/plain`` + the ``vomni_nb`` metadata), so the saved notebook holds the whole
   answer whatever the throttle dropped.
2. Audio goes to the live speech player (:class:`vomni_nb.widgets.LiveSpeechPlayer`), which ends as the
   static ``<audio controls>`` player of the result (never autoplaying in the saved output). A streamed
   chat answer that speaks therefore ends as two static outputs: its text (with the metadata), then its
   player; the text output then leaves the audio out, so nothing is embedded twice.
3. A view ends its outputs itself (``finish`` with the result, ``fail`` with what arrived), so the wait
   line it was given is ended too; a caller that ends that line again changes nothing (WaitLine ignores it).
4. Called on the cell's thread only (``call_stream`` hands the events over); imports IPython and the
   widgets only when something is shown.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vomni_nb.display import WaitLine
    from vomni_nb.results import ChatResult
    from vomni_nb.widgets import LiveSpeechPlayer

__all__ = ["SpeechView", "ChatView", "TEXT_INTERVAL", "spoken_part"]

TEXT_INTERVAL = 0.08  # s between two updates of streamed text: at most ~12 a second, however fast tokens come


def _player(title: str) -> LiveSpeechPlayer:
    from vomni_nb.widgets import LiveSpeechPlayer

    player = LiveSpeechPlayer(title=title, autoplay=True)  # the live view plays as it arrives; the static one never
    player.start()
    return player


class SpeechView:
    """Streamed speech: the wait line until the audio begins, then the live player in its place."""

    def __init__(self, line: WaitLine, title: str) -> None:
        self.line = line
        self.title = title
        self.player: LiveSpeechPlayer | None = None

    def opened(self) -> None:
        self.line.clear()
        self.player = _player(self.title)

    def event(self, event: Any, text: str) -> None:
        if self.player is not None:
            self.player.take(event)

    def finish(self, result: Any) -> None:
        """The result's static player in place of the live one."""
        if self.player is None:
            self.line.replace(result)
        else:
            self.player.finish(result)

    def fail(self, error: BaseException) -> None:
        """A status line and a player of what arrived; the caller re-raises."""
        if self.player is not None:
            self.player.fail(error)


def _prose(text: str, cursor: str = "") -> tuple[str, str]:
    return text + cursor, f"<div style='white-space:pre-wrap'>{html.escape(text + cursor)}</div>"


def spoken_part(result: ChatResult) -> Any:
    """A spoken answer's audio as a SpeechResult (its own static player, with the chat's provenance)."""
    from vomni_nb.results import SpeechResult

    return SpeechResult(audio=result.audio or b"", format=result.audio_format or "wav", sample_rate=result.sample_rate,
                        frames=result.audio_frames, provenance=result.provenance)


class ChatView:
    """A streamed chat answer: its text live in the wait line's output, its voice (if any) in a live player."""

    def __init__(self, line: WaitLine, title: str, *, interval: float = TEXT_INTERVAL) -> None:
        from vomni_nb.display import LiveLine

        self.line = line
        self.title = title
        self.text = ""
        self.live = LiveLine(interval, sink=self._show)
        self.player: LiveSpeechPlayer | None = None
        self.started = False

    def _show(self, data: dict[str, str], first: bool) -> None:
        self.line.update(data["text/plain"], data["text/html"], force=True)  # the throttle is the LiveLine's

    def opened(self) -> None:
        # Shown now, so a player that starts before the first word still comes below the text.
        self.started = True
        self.line.update(*_prose(f"◔ {self.title} …"), force=True)

    def event(self, event: Any, text: str) -> None:
        from vomni_nb.protocol.streaming import AudioDelta

        if isinstance(event, AudioDelta):
            if self.player is None:
                self.player = _player("spoken answer")
            self.player.take(event)
        elif text != self.text:
            self.text = text
            if self.live.due():  # the text is escaped only for the updates that are shown
                self.live.update(*_prose(text, " ▌"))

    def finish(self, result: ChatResult) -> None:
        from vomni_nb.display import StaticOutput

        self.live.finished = True  # the throttled line is done; the result takes its place
        if self.player is None:
            self.line.replace(result)
            return
        data, metadata = result._repr_mimebundle_()
        if not result.images:
            data = {key: value for key, value in data.items() if key != "text/html"}  # the audio is in the player
        self.line.replace(StaticOutput(dict(data), dict(metadata)))
        self.player.finish(spoken_part(result))

    def fail(self, error: BaseException) -> None:
        """The text that arrived, marked as cut short; the player (if any) keeps what it received. Before the
        answer began there is nothing to keep: the wait line is left to the caller (the error says it all)."""
        if not self.started:
            return
        reason = "interrupted" if isinstance(error, KeyboardInterrupt) else f"stopped: {type(error).__name__}"
        self.live.finished = True
        self.line.finish(*_prose(self.text + (" " if self.text else "") + f"✗ ({reason})"))
        if self.player is not None:
            self.player.fail(error)
