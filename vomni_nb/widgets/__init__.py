"""Live widgets: the speech player that plays streamed audio while it is generated.

``play_stream(client.speak_stream(text, response_format="pcm"))`` shows the player, feeds it the chunks
as they arrive and leaves the static ``<audio controls>`` output of the result when the stream ends;
``aplay_stream`` does it for the async client's streams. ``LiveSpeechPlayer`` is the same thing driven by
hand (``start``, ``feed``, ``finish`` or ``fail``).
The browser side is ``player.js`` (an anywidget module) beside this file. Importing this package loads
neither IPython nor ipywidgets: they load when something is shown.
"""

from __future__ import annotations

from vomni_nb.widgets._speech import (
    AsyncAudioEventStream,
    AudioEventStream,
    LiveSpeechPlayer,
    aplay_stream,
    play_stream,
)

__all__ = ["AsyncAudioEventStream", "AudioEventStream", "LiveSpeechPlayer", "aplay_stream", "play_stream"]
