"""Live widgets: the speech player that plays streamed audio while it is generated, the server panel and
the Studio.

``play_stream(client.speak_stream(text, response_format="pcm"))`` shows the player, feeds it the chunks
as they arrive and leaves the static ``<audio controls>`` output of the result when the stream ends;
``aplay_stream`` does it for the async client's streams. ``LiveSpeechPlayer`` is the same thing driven by
hand (``start``, ``feed``, ``finish`` or ``fail``).
``ServerPanel()`` shows every server with Stop/Restart, refreshed in the background; ``Studio()`` is a
prompt-iteration widget for image models (Generate and Cancel run on the kernel's event loop).
The browser sides are ``player.js``, ``panel.js`` and ``studio.js`` (anywidget modules) beside this file.
Importing this package loads neither IPython nor ipywidgets: they load when something is shown.
"""

from __future__ import annotations

from vomni_nb.widgets._speech import (
    AsyncAudioEventStream,
    AudioEventStream,
    LiveSpeechPlayer,
    aplay_stream,
    play_stream,
)
from vomni_nb.widgets._panel import ServerPanel
from vomni_nb.widgets._studio import Studio

__all__ = ["AsyncAudioEventStream", "AudioEventStream", "LiveSpeechPlayer", "ServerPanel", "Studio",
           "aplay_stream", "play_stream"]
