"""The Studio in a real page: JupyterLab 4 in headless Chromium (Debian's chromium driven by Playwright),
against a real vomni-sim image server that the notebook starts through the manager, slowed with
``--latency 5`` so that a Cancel lands while the server is still generating.

What a person would notice: Generate adds an image with its seed and time; while a slow generation runs,
another cell runs and completes; Cancel stops it (the server logs the abort, the Studio says "cancelled");
Pin leaves the image as an ordinary output under the Studio; Save writes its file; a click on the history
strip puts an older result's settings back; closing leaves a static summary. Screenshots go to .ci/out/.
The cancel latency (click to "cancelled" on the page) is printed, not asserted.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.lab import CHROMIUM_ARGS, Quiet, jupyter_server
from tests.support.notebook_page import (cell_text, click, open_notebook, run_cell, save_and_read, wait_cell_done,
                                         wait_file_text, write_notebook)
from tests.support.sims import IMAGE_MODEL

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

OUT = Path(__file__).resolve().parents[2] / ".ci" / "out"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
STUDIO = ".vomni-studio .vomni-st"
CELL = "window.jupyterapp.shell.currentWidget.content.widgets"
PROMPT = "a lighthouse on a cliff at dusk, oil painting"
OLD_PROMPT = "a red fox in fresh snow, watercolour"


def _old_entry(path: Path) -> int:
    """A past image in the history store, so the strip has something to restore."""
    from PIL import Image

    from vomni_nb import HistoryStore
    from vomni_nb.provenance import Provenance

    picture = Image.new("RGB", (256, 256))
    picture.putdata([(200, 60 + y // 2, 40 + x // 3) for y in range(256) for x in range(256)])
    png = io.BytesIO()
    picture.save(png, "PNG")
    record = Provenance(kind="image", model=IMAGE_MODEL, prompt=OLD_PROMPT, seed=777,
                        params={"prompt": OLD_PROMPT, "size": "768x768", "num_inference_steps": 12,
                                "guidance_scale": 3.5, "negative_prompt": "blurry"}).to_record()
    with HistoryStore(path) as store:
        entry = store.record(record, files=[png.getvalue()])
    assert entry is not None
    return entry.id


def _cells(tmp: Path) -> list[str]:
    return [
        "from vomni_nb import HistoryStore, Studio\n"
        "from vomni_nb.server import ServerManager\n"
        f"m = ServerManager(registry_dir={str(tmp / 'registry')!r}, log_dir={str(tmp / 'logs')!r})\n"
        f"server = m.start({IMAGE_MODEL!r}, sim=True, extra_args=['--latency', '5'])\n"
        f"store = HistoryStore({str(tmp / 'history.sqlite3')!r})",
        f"studio = Studio({PROMPT!r}, manager=m, store=store, steps=8, save_dir={str(tmp / 'saved')!r})\nstudio",
        "print('meanwhile:', studio.status, '|', studio.params.prompt, '|', studio.params.seed)",
        "studio.close()\nm.shutdown()",
    ]


def _shot(page: Any, name: str) -> None:
    page.locator(".vomni-studio, .vomni-studio-static").first.screenshot(path=str(OUT / f"studio-{name}.png"))


def _state(quiet: Quiet) -> str:
    return str(quiet.eval(f"document.querySelector({STUDIO!r})?.dataset.state || ''"))


def test_studio_generates_cancels_pins_and_restores(chromium: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    old_id = _old_entry(tmp_path / "history.sqlite3")
    notebook = write_notebook(tmp_path / "studio.ipynb", _cells(tmp_path))
    with jupyter_server(tmp_path) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            quiet = Quiet(page)
            open_notebook(quiet, base, notebook)
            for index in (0, 1):
                run_cell(quiet, index)
                wait_cell_done(quiet, index, timeout=120)
            quiet.wait(f"document.querySelectorAll('.vomni-st-strip button[data-id]').length === 1", timeout=60)
            assert quiet.eval("document.querySelector('.vomni-st textarea[data-field=prompt]').value") == PROMPT
            _shot(page, "ready")

            # Generate adds an image, with its seed and time.
            click(quiet, ".vomni-st-generate")
            quiet.wait(f"document.querySelector({STUDIO!r}).dataset.state === 'running'", timeout=30)
            quiet.wait("!!document.querySelector('.vomni-st-main img.vomni-st-image')", timeout=60)
            quiet.wait(f"document.querySelector({STUDIO!r}).dataset.state === 'done'", timeout=10)
            facts = quiet.eval("document.querySelector('.vomni-st-facts').textContent")
            seed = quiet.eval("document.querySelector('.vomni-st-facts').dataset.seed")
            assert f"seed {seed}" in facts and " s · 1024 × 1024" in facts, facts
            assert quiet.eval("document.querySelector('.vomni-st input[data-field=seed]').value") == seed
            assert quiet.eval("document.querySelectorAll('.vomni-st-strip button[data-id]').length") == 2
            _shot(page, "image")

            # A slow generation: another cell runs meanwhile, and Cancel stops the request.
            click(quiet, ".vomni-st-generate")
            quiet.wait(f"document.querySelector({STUDIO!r}).dataset.state === 'running'", timeout=30)
            started = time.monotonic()
            run_cell(quiet, 2)
            wait_cell_done(quiet, 2, timeout=30)
            assert "meanwhile: running" in cell_text(quiet, 2)
            time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
            _shot(page, "running")
            click(quiet, ".vomni-st-cancel")
            quiet.wait(f"document.querySelector({STUDIO!r}).dataset.state === 'cancelled'", timeout=10)
            record = quiet.eval("globalThis.vomniStudio")
            latency_ms = record["cancelledShownAt"] - record["cancelClickedAt"]
            print(f"\ncancel: click to 'cancelled' on the page in {latency_ms:.0f} ms")
            assert "cancelled" in quiet.eval("document.querySelector('.vomni-st-statustext').textContent")
            (log,) = (tmp_path / "logs").glob("*.log")
            wait_file_text(log, "aborted.", timeout=10)
            # ... and the image made before is still the one shown.
            assert quiet.eval("document.querySelector('.vomni-st-facts').dataset.seed") == seed
            _shot(page, "cancelled")

            # Pin leaves the image as a static output under the Studio; Save writes its file.
            click(quiet, ".vomni-st-caption button[data-action=pin]")
            quiet.wait(f"{CELL}[1].outputArea.node.querySelectorAll('.jp-RenderedHTMLCommon figure img').length === 1", timeout=30)
            click(quiet, ".vomni-st-caption button[data-action=save]")
            quiet.wait("document.querySelector('.vomni-st-note').textContent.startsWith('saved ')", timeout=30)
            assert len(list((tmp_path / "saved").glob("*.png"))) == 1

            # A click on the strip restores an older result's settings, in the page and in the kernel.
            click(quiet, f".vomni-st-strip button[data-id='{old_id}']")
            assert quiet.eval("document.querySelector('.vomni-st textarea[data-field=prompt]').value") == OLD_PROMPT
            assert quiet.eval("document.querySelector('.vomni-st input[data-field=seed]').value") == "777"
            assert quiet.eval("document.querySelector('.vomni-st select[data-field=size]').value") == "768x768"
            _shot(page, "restored")
            run_cell(quiet, 2)
            wait_cell_done(quiet, 2, timeout=30)
            assert f"| {OLD_PROMPT} | 777" in cell_text(quiet, 2)

            # Closing leaves a static summary; the saved notebook holds no widget.
            run_cell(quiet, 3)
            wait_cell_done(quiet, 3, timeout=60)
            quiet.wait("!document.querySelector('.vomni-studio') && !!document.querySelector('.vomni-studio-static')")
            assert "Error displaying widget" not in quiet.eval("document.body.innerText")
            _shot(page, "closed")
            page.screenshot(path=str(OUT / "studio-notebook.png"), full_page=True)
            nb = save_and_read(quiet, tmp_path / "studio.ipynb")
        except BaseException:
            page.screenshot(path=str(OUT / "studio-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    outputs = nb.cells[1].outputs
    assert not any(WIDGET_MIME in output.get("data", {}) for cell in nb.cells for output in cell.get("outputs", []))
    assert outputs[0].data["text/plain"].startswith("Studio (closed)")
    pinned = [output for output in outputs if "<img" in output.get("data", {}).get("text/html", "")
              and not output.data["text/plain"].startswith("Studio")]  # the pinned image, shown as a preview
    assert len(pinned) == 1
    assert pinned[0].metadata["vomni_nb"]["seed"] == int(seed)
    assert pinned[0].metadata["vomni_nb"]["history_id"] > old_id
