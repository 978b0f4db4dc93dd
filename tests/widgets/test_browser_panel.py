"""The ServerPanel in a real page: JupyterLab 4 in headless Chromium (Debian's chromium driven by Playwright),
with two real vomni-sim servers that the notebook starts through the manager, and the stand-in nvidia-smi
(tests/support/stand_in) for GPU memory.

What a person would notice: both servers with their state, model, URL, uptime and GPU memory; Stop asks
for a confirmation, then stops that server (the manager's books and the process agree) and the panel drops
it; closing leaves a static table, and the saved notebook holds no widget. Screenshots go to .ci/out/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.lab import CHROMIUM_ARGS, Quiet, jupyter_server
from tests.support.notebook_page import (cell_text, click, open_notebook, run_cell, save_and_read, wait_cell_done,
                                         write_notebook)
from tests.support.sims import IMAGE_MODEL, STAND_IN, TTS_MODEL

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

OUT = Path(__file__).resolve().parents[2] / ".ci" / "out"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
CARD = ".vomni-sp-card"


def _cells(tmp: Path) -> list[str]:
    return [
        "import os\n"
        "from vomni_nb import ServerPanel\n"
        "from vomni_nb.server import ServerManager\n"
        f"m = ServerManager(registry_dir={str(tmp / 'registry')!r}, log_dir={str(tmp / 'logs')!r}, "
        f"nvidia_smi={str(STAND_IN / 'nvidia-smi')!r})\n"
        f"image = m.start({IMAGE_MODEL!r}, sim=True)\n"
        f"speech = m.start({TTS_MODEL!r}, sim=True)\n"
        "os.environ['STANDIN_GPU_APPS'] = f'{image.pid}:30512 {speech.pid}:9216'",
        "panel = ServerPanel(m, interval=1)\npanel",
        "print(sorted(s.name for s in m.servers), speech.alive())",
        "panel.close()\nm.shutdown()",
    ]


def _card(name: str) -> str:
    return f"{CARD}[data-name='{name}']"


def _shot(page: Any, name: str) -> None:
    page.locator(".vomni-server-panel, .vomni-server-panel-static").first.screenshot(path=str(OUT / f"panel-{name}.png"))


def test_panel_shows_two_servers_and_stops_one(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    notebook = write_notebook(tmp_path / "panel.ipynb", _cells(tmp_path))
    with jupyter_server(tmp_path) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            quiet = Quiet(page)
            open_notebook(quiet, base, notebook)
            for index in (0, 1):
                run_cell(quiet, index)
                wait_cell_done(quiet, index, timeout=120)
            quiet.wait(f"document.querySelectorAll('{CARD}[data-state=ready]').length === 2", timeout=30)
            for name in (IMAGE_MODEL, TTS_MODEL):
                text = quiet.eval(f"document.querySelector({_card(name)!r}).innerText")
                assert "ready" in text and "http://127.0.0.1:" in text and "sim" in text, text
            assert quiet.eval(f"document.querySelector({_card(IMAGE_MODEL) + ' [data-gpu]'!r}).dataset.gpu") == "29.8 GiB"
            assert quiet.eval(f"document.querySelector({_card(TTS_MODEL) + ' [data-gpu]'!r}).dataset.gpu") == "9.0 GiB"
            assert quiet.eval("document.querySelectorAll('.vomni-sp-gpu').length") == 2
            quiet.wait(f"/up [0-9]+ s/.test(document.querySelector({_card(IMAGE_MODEL)!r}).innerText)", timeout=10)
            click(quiet, f"{_card(IMAGE_MODEL)} summary")
            _shot(page, "two-servers")

            # Stop asks once more, then stops that server only.
            pid = int(quiet.eval(f"document.querySelector({_card(TTS_MODEL)!r}).dataset.pid"))
            stop = f"{_card(TTS_MODEL)} button[data-action=stop]"
            click(quiet, stop)
            assert quiet.eval(f"document.querySelector({stop!r}).textContent") == "Confirm stop?"
            assert psutil.pid_exists(pid)
            _shot(page, "confirm-stop")
            # The confirmation lasts 4 s; a full-page screenshot on a loaded machine can take longer: ask again.
            if quiet.eval(f"document.querySelector({stop!r}).textContent") != "Confirm stop?":
                click(quiet, stop)
            click(quiet, stop)
            quiet.wait(f"!document.querySelector({_card(TTS_MODEL)!r})", timeout=30)
            quiet.wait("document.querySelector('.vomni-sp-note').textContent.startsWith('stopped ')", timeout=10)
            assert quiet.eval(f"document.querySelectorAll('{CARD}').length") == 1
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            run_cell(quiet, 2)
            wait_cell_done(quiet, 2, timeout=30)
            assert f"[{IMAGE_MODEL!r}] False" in cell_text(quiet, 2)
            _shot(page, "stopped")

            run_cell(quiet, 3)
            wait_cell_done(quiet, 3, timeout=60)
            quiet.wait("!document.querySelector('.vomni-server-panel') && !!document.querySelector('.vomni-server-panel-static')")
            assert "Error displaying widget" not in quiet.eval("document.body.innerText")
            _shot(page, "closed")
            nb = save_and_read(quiet, tmp_path / "panel.ipynb")
        except BaseException:
            page.screenshot(path=str(OUT / "panel-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert not any(WIDGET_MIME in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", []))
    (static,) = nb.cells[1].outputs
    assert static.data["text/plain"].startswith("vomni_nb servers at") and IMAGE_MODEL in static.data["text/plain"]
    assert f"{TTS_MODEL}: ready" not in static.data["text/plain"]
    assert f"stopped {TTS_MODEL}" in static.data["text/plain"]
