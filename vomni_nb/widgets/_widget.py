"""The kernel side of the live speech player: an anywidget whose front end is ``player.js`` beside it.

State that the view needs once (title, sample rate, channels, autoplay, the stream's id) is in traitlets;
audio is never a trait: each PCM16 chunk goes out as the binary buffer of one custom message, so nothing
accumulates in the widget state (and nothing is base64-encoded into JSON).
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

__all__ = ["SpeechPlayerWidget"]


class SpeechPlayerWidget(anywidget.AnyWidget):
    """Plays PCM16 chunks in the browser as they are sent (``send_chunk``), then ``end`` or ``abort``."""

    _esm = Path(__file__).with_name("player.js")
    stream_id = traitlets.Unicode("").tag(sync=True)
    title = traitlets.Unicode("speech").tag(sync=True)
    sample_rate = traitlets.Int(24000).tag(sync=True)
    channels = traitlets.Int(1).tag(sync=True)
    autoplay = traitlets.Bool(True).tag(sync=True)

    def send_chunk(self, pcm: bytes, *, sample_rate: int, channels: int) -> None:
        """One piece of 16-bit little-endian PCM (interleaved when ``channels`` > 1)."""
        self.send({"type": "chunk", "rate": sample_rate, "channels": channels}, buffers=[pcm])

    def note(self, text: str) -> None:
        """A short note shown beside the clock (e.g. why nothing plays)."""
        self.send({"type": "note", "note": text})

    def end(self) -> None:
        """The stream is complete: the view may hand its playback to the static player that replaces it."""
        self.send({"type": "end"})

    def abort(self, note: str) -> None:
        """The stream failed or was interrupted: stop the sound now."""
        self.send({"type": "abort", "note": note})
