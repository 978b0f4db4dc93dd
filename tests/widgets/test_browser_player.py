"""The live speech player in a real page: JupyterLab 4 and Notebook 7 in headless Chromium (Debian's
chromium driven by Playwright), against a real vomni-sim TTS server.

What a person would notice: the player starts sounding before the stream has finished, the speech goes on
in the static player that replaces it, the saved notebook holds no widget, and a browser that blocks audio
until a gesture (Chrome's default policy) shows "click to listen", and a click starts the sound.
Screenshots go to .ci/out/ (CI keeps that folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.lab import CHROMIUM_ARGS, Quiet, jupyter_server
from tests.support.sims import TTS_MODEL

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

OUT = Path(__file__).resolve().parents[2] / ".ci" / "out"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
AUDIO_ALLOWED = "--autoplay-policy=no-user-gesture-required"
AUDIO_AFTER_GESTURE = "--autoplay-policy=document-user-activation-required"  # desktop Chrome's default
# About 35 s of speech: vomni-sim streams speech 8x faster than it plays, so the stream lasts seconds.
TEXT = " ".join(
    [
        "This sentence is spoken by the simulator while the notebook listens.",
        "Every chunk of sound is sent to the browser as soon as it arrives,",
        "and the player schedules it right after the one before, without a gap.",
        "When the stream is over, the cell keeps an ordinary audio player,",
        "so the saved notebook can still be played on any machine, even without a kernel.",
        "The waveform grows from left to right, and the clock shows how much has been heard.",
    ]
)
RECORD = "(Object.values(globalThis.vomniSpeechPlayers || {})[0] || null)"
STATIC_AUDIO = "document.querySelector('[data-vomni-speech] audio')"


def _write_notebook(folder: Path, url: str, text: str = TEXT) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from vomni_nb import OmniClient\n"
            "from vomni_nb.widgets import play_stream\n"
            f"client = OmniClient({url!r})"
        ),
        nbformat.v4.new_code_cell(
            f"stream = client.speak_stream({text!r}, response_format='pcm')\n"
            "result = play_stream(stream, title='live speech')"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "live.ipynb")
    return "live.ipynb"


def _wait_for_static_player(quiet: Quiet) -> None:
    quiet.wait(f"(() => {{ const a = {STATIC_AUDIO};"
               " return !!a && a.controls && a.src.startsWith('data:audio/') && a.duration > 20; })()", timeout=120)


def _wait_for_handoff(quiet: Quiet) -> dict[str, Any]:
    quiet.wait(f"!!{RECORD} && !!{RECORD}.handoff", timeout=15)
    record: dict[str, Any] = quiet.eval(RECORD)
    assert record["handoff"] == "audio-element", record
    assert record["handoffPosition"] > 0, record
    audio = quiet.eval(f"(() => {{ const a = {STATIC_AUDIO};"
                       " return {paused: a.paused, time: a.currentTime, autoplay: a.autoplay}; })()")
    assert not audio["paused"] and audio["time"] >= record["handoffPosition"], (audio, record)
    assert not audio["autoplay"]
    return record


def _saved_outputs(quiet: Quiet, folder: Path) -> list[dict[str, Any]]:
    quiet.eval("window.jupyterapp.commands.execute('docmanager:save')")
    quiet.wait("!window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30)
    nb = nbformat.read(folder / "live.ipynb", as_version=4)  # joins the saved multi-line strings
    assert "widgets" not in nb.metadata
    return [output for cell in nb.cells for output in cell.get("outputs", [])]


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_player_plays_before_the_stream_ends_and_leaves_a_static_player(
    app: str, chromium: str, start_sim: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    sim = start_sim(TTS_MODEL)
    notebook = _write_notebook(tmp_path, sim.url)
    with jupyter_server(tmp_path, app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[*CHROMIUM_ARGS, AUDIO_ALLOWED])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            quiet = Quiet(page)
            quiet.open_and_run_all(base, notebook, app)
            # Live: the widget renders and schedules audio while chunks are still arriving.
            quiet.wait("!!document.querySelector('.vomni-speech-player canvas')", timeout=120)
            quiet.wait(f"!!{RECORD} && {RECORD}.chunksScheduled >= 3")
            page.screenshot(path=str(OUT / f"speech-player-{app}-live.png"), full_page=True)
            _wait_for_static_player(quiet)
            record = quiet.eval(RECORD)
            assert record["firstScheduledAt"] < record["lastReceivedAt"], record
            assert record["contextStateAtFirstSchedule"] == "running", record
            assert record["chunksReceived"] >= 10, record
            assert record["endedAt"] >= record["lastReceivedAt"], record
            # The static player took over the speech where the live one was, instead of silence.
            _wait_for_handoff(quiet)
            assert not quiet.eval("!!document.querySelector('.vomni-speech-player')")
            assert "Error displaying widget" not in quiet.eval("document.body.innerText")
            page.screenshot(path=str(OUT / f"speech-player-{app}-done.png"), full_page=True)
            outputs = _saved_outputs(quiet, tmp_path)
        finally:
            browser.close()
    speech = [o for o in outputs if "<audio controls" in o.get("data", {}).get("text/html", "")]
    assert len(speech) == 1 and 'src="data:audio/' in speech[0]["data"]["text/html"]
    assert not any(WIDGET_MIME in o.get("data", {}) for o in outputs)


def test_a_browser_that_blocks_audio_shows_click_to_listen(chromium: str, start_sim: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    sim = start_sim(TTS_MODEL)
    notebook = _write_notebook(tmp_path, sim.url, text=f"{TEXT} {TEXT}")  # a longer stream leaves time to click
    with jupyter_server(tmp_path) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=[*CHROMIUM_ARGS, AUDIO_AFTER_GESTURE])
        try:
            quiet = Quiet(browser.new_page(viewport={"width": 1100, "height": 800}))
            quiet.open_and_run_all(base, notebook)
            button = ".vomni-speech-player button"
            quiet.wait(f"document.querySelector({button!r})?.dataset.action === 'listen'", timeout=120)
            assert "click to listen" in quiet.eval(f"document.querySelector({button!r}).textContent")
            quiet.wait(f"!!{RECORD} && {RECORD}.chunksScheduled >= 1")
            assert quiet.eval(RECORD)["contextStateAtFirstSchedule"] == "suspended"
            quiet.click(button)
            quiet.wait("document.querySelector('.vomni-speech-player')?.dataset.contextState === 'running'", timeout=10)
            assert quiet.eval(f"document.querySelector({button!r}).dataset.action") == "stop"
            _wait_for_static_player(quiet)
            _wait_for_handoff(quiet)  # the click was a gesture, so the static player may go on playing
        finally:
            browser.close()
