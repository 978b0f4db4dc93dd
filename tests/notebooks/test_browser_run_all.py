"""The quickstart as a newcomer runs it: opened in JupyterLab 4 and in Notebook 7 (headless Chromium, a fresh
profile, loopback only), outputs cleared, "Run All" from the page, in a kernel with nothing else running.
The page must then show a picture that has loaded, an audio player with a source that never starts by
itself, the chat answer arriving in pieces, and no error. Full screenshots go to `.ci/out/` (CI keeps them;
docs/quickstart-jupyterlab.png in the README is one of them).

Skipped where Chromium is missing (a plain `make test` on a laptop); CI installs it and fails on a skip.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.lab import CHROMIUM_ARGS, TOKEN, Quiet, jupyter_server
from tests.support.notebooks import QUICKSTART, ROOT, isolate, workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

OUT = ROOT / ".ci" / "out"
APP_NAMES = {"lab": "jupyterlab", "notebook": "notebook7"}
_PANEL = "window.jupyterapp.shell.currentWidget"
_CODE_CELLS = f"{_PANEL}.content.widgets.filter(c => c.model.type === 'code')"

# Records the length of the chat cell's visible output each time it changes, from before Run All.
_WATCH_THE_CHAT = f"""(() => {{
    const cell = {_PANEL}.content.widgets.find(c => c.model.sharedModel.getSource().includes('Describe this picture'));
    const area = cell.outputArea.node;
    window.__chatLengths = [];
    new MutationObserver(() => {{
        const seen = window.__chatLengths, length = area.innerText.trim().length;
        if (seen[seen.length - 1] !== length) seen.push(length);
    }}).observe(area, {{childList: true, subtree: true, characterData: true}});
    return true;
}})()"""

# Run All is over when the kernel is idle and every cell ran, or a cell failed (the rest then never run).
_FINISHED = f"""(() => {{
    const cells = {_CODE_CELLS};
    const failed = cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
    return cells.length > 0 && (failed || cells.every(c => c.model.executionCount !== null))
        && {_PANEL}.sessionContext.session?.kernel?.status === 'idle';
}})()"""

_PROBLEMS = f"""{_CODE_CELLS}.flatMap(c => c.model.outputs.toJSON())
    .filter(o => o.output_type === 'error' || (o.output_type === 'stream' && o.name === 'stderr'))
    .map(o => o.output_type === 'error' ? o.ename + ': ' + o.evalue : 'stderr: ' + o.text)"""

_MEDIA = """(() => {
    const images = [...document.querySelectorAll('.jp-OutputArea-output img')];
    const audios = [...document.querySelectorAll('.jp-OutputArea-output audio')];
    return {
        images: images.filter(i => i.complete && i.naturalWidth > 0).map(i => i.naturalWidth),
        audios: audios.map(a => ({controls: a.controls, autoplay: a.autoplay, loop: a.loop, duration: a.duration,
                                  source: a.currentSrc || a.src || (a.querySelector('source') || {}).src || ''})),
    };
})()"""


def _open(quiet: Quiet, base: str, app: str) -> None:
    route = "lab/tree" if app == "lab" else "notebooks"
    quiet.page.goto(f"{base}/{route}/notebooks/{QUICKSTART.name}?token={TOKEN}")
    quiet.wait(f"!!(window.jupyterapp && {_PANEL} && {_PANEL}.sessionContext)", timeout=90)
    quiet.eval(f"(async () => {{ await {_PANEL}.context.ready; await {_PANEL}.sessionContext.ready; }})()")
    quiet.wait(f"{_PANEL}.sessionContext.session?.kernel?.status === 'idle'", timeout=90)


# The element the notebook scrolls in (JupyterLab and Notebook 7 scroll inside the page, not the page itself).
_SCROLLER = f"""[...{_PANEL}.node.querySelectorAll('*')].filter(e => e.scrollHeight > e.clientHeight + 10)
    .sort((a, b) => b.scrollHeight - a.scrollHeight)[0]"""


def _screenshot(quiet: Quiet, path: Path, app: str) -> None:
    """The whole notebook, from its top: the window is made as tall as the notebook, the file browser closed."""
    if app == "lab":
        quiet.eval("window.jupyterapp.shell.collapseLeft()")
    extra = quiet.eval(f"(() => {{ const s = {_SCROLLER}; return s ? s.scrollHeight - s.clientHeight : 0; }})()") or 0
    height = quiet.page.viewport_size["height"] + int(extra)
    quiet.page.set_viewport_size({"width": 1280, "height": min(height, 8000)})
    time.sleep(0.5)
    quiet.eval(f"(() => {{ const s = {_SCROLLER}; if (s) s.scrollTop = 0; }})()")
    time.sleep(0.5)
    quiet.page.screenshot(path=str(path))


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_quickstart_run_all_in_the_browser(app: str, chromium: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import sync_playwright

    isolate(monkeypatch, tmp_path)
    workspace(tmp_path)
    OUT.mkdir(parents=True, exist_ok=True)
    shot = OUT / f"quickstart-{APP_NAMES[app]}.png"
    with jupyter_server(tmp_path, app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            quiet = Quiet(browser.new_page(viewport={"width": 1280, "height": 1000}))
            _open(quiet, base, app)
            quiet.eval(_WATCH_THE_CHAT)
            quiet.eval("(async () => { const app = window.jupyterapp;"
                       " await app.commands.execute('notebook:clear-all-cell-outputs');"
                       " app.commands.execute('notebook:run-all-cells'); })()")
            try:
                quiet.wait(_FINISHED, timeout=180)
                # The players load their data after the cell ends: wait for the duration to be known.
                quiet.wait(f"({_MEDIA}).audios.some(a => a.duration > 0.5)", timeout=30)
            finally:
                _screenshot(quiet, shot, app)
            problems = quiet.eval(_PROBLEMS)
            media: dict[str, Any] = quiet.eval(_MEDIA)
            lengths: list[int] = quiet.eval("window.__chatLengths")
        finally:
            browser.close()
    assert problems == [], problems
    assert media["images"], "a picture that has loaded (natural width > 0)"
    (audio,) = media["audios"]
    assert audio["controls"] and audio["source"].startswith("data:audio/") and audio["duration"] > 0.5, audio
    assert not audio["autoplay"] and not audio["loop"], audio
    # The answer arrived in pieces: the output grew through several lengths before its final one.
    final = lengths[-1]
    assert final > 40 and len({length for length in lengths if 0 < length < final}) >= 3, lengths
