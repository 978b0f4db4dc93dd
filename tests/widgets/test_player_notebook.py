"""A notebook that streams speech, executed headless by nbclient (no front end, no widget manager) against
a real vomni-sim TTS server: the cell completes and keeps only the static player, no widget output and no
widget state in the notebook, with the live status line shown while the audio arrived.
"""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.sims import TTS_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(180)]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# About 20 s of speech, so the stream lasts a few seconds (vomni-sim streams speech 8x faster than it plays).
TEXT = (
    "A notebook executed without a browser still streams its speech. The kernel shows a line that says "
    "how much audio has arrived, and when the stream ends that line becomes an ordinary audio player, "
    "which is what the saved notebook keeps."
)


class RecordingClient(NotebookClient):
    """nbclient as it is, noting the outputs each message made (the saved notebook keeps only the last)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown: list[tuple[str, str]] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] in ("display_data", "update_display_data"):
            self.shown.append((msg["msg_type"], msg["content"]["data"].get("text/plain", "")))
        return super().process_message(msg, cell, cell_index)


def test_headless_notebook_keeps_the_static_player_only(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from vomni_nb import OmniClient\n"
            "from vomni_nb.widgets import play_stream\n"
            f"stream = OmniClient({sim.url!r}).speak_stream({TEXT!r}, response_format='pcm')\n"
            "result = play_stream(stream, title='headless speech')"
        ),
        nbformat.v4.new_code_cell("print(round(result.duration_s))"),
    ]
    client = RecordingClient(nb, timeout=120, kernel_name="python3")
    client.execute()
    outputs = nb.cells[0].outputs
    assert len(outputs) == 1, outputs
    (output,) = outputs
    assert output.output_type == "display_data"
    assert WIDGET_MIME not in output.data
    assert '<audio controls src="data:audio/' in output.data["text/html"]
    assert output.data["text/plain"].startswith("SpeechResult(")
    assert output.metadata["vomni_nb"]["kind"] == "speech"
    assert "widgets" not in nb.metadata
    assert int(nb.cells[1].outputs[0].text) >= 10
    # While it streamed, the same output was a status line that counted the audio.
    kinds = [kind for kind, _ in client.shown]
    assert kinds[0] == "display_data" and set(kinds[1:]) == {"update_display_data"}
    assert client.shown[0][1].startswith("♪ headless speech: receiving speech")
    assert any("s of audio" in text for _, text in client.shown[1:-1])
