"""Helpers for tests that run notebooks live in a browser: a JupyterLab (or Notebook 7) server on a free
port, and a way to drive its page without giving it a user gesture.

Playwright evaluates scripts as if the user had acted, which unlocks audio for the whole page (Chrome's
autoplay policy), so whatever must happen without a gesture goes through ``Quiet``: raw DevTools calls with
``userGesture: false``, and a click that is a real mouse press at the element's place.
Plain context managers and classes, not fixtures (those live in ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.sims import free_port

__all__ = ["CHROMIUM_ARGS", "TOKEN", "Quiet", "jupyter_server"]

# A fresh profile per launch (Playwright's default) and no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "vomni-browser-test"


@contextlib.contextmanager
def jupyter_server(root: Path, app: str = "lab") -> Iterator[str]:
    """Run ``jupyter lab`` (or ``jupyter notebook``, Notebook 7) serving ``root``; yield its base URL."""
    port = free_port()
    log_path = root / f"jupyter-{app}.log"
    args = [sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root", f"--port={port}",
            "--ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}"]
    if app == "lab":
        args += ["--LabApp.news_url=", "--LabApp.expose_app_in_browser=True",
                 "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    else:
        args += ["--JupyterNotebookApp.expose_app_in_browser=True"]
    config = root / "jupyter-config"
    # No "get notified about Jupyter news?" toast over the page (screenshots) and no news fetch.
    news = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jupyter {app} did not start:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/status?token={TOKEN}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class Quiet:
    """Drives a Playwright page through DevTools without granting it a user gesture."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)

    def eval(self, expression: str) -> Any:
        """The value of a JS expression (awaited if it is a promise)."""
        reply = self.cdp.send("Runtime.evaluate", {
            "expression": expression, "userGesture": False, "awaitPromise": True, "returnByValue": True,
        })
        if "exceptionDetails" in reply:
            raise AssertionError(f"page script failed: {reply['exceptionDetails']}")
        return reply.get("result", {}).get("value")

    def wait(self, expression: str, timeout: float = 60.0) -> Any:
        """Poll a JS expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {expression}")
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """A real mouse press and release at the middle of the element (the only gesture it gives)."""
        box = self.eval(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.cdp.send("Input.dispatchMouseEvent",
                          {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1})

    def open_and_run_all(self, base: str, notebook: str, app: str = "lab") -> None:
        """Open ``notebook`` (a path under the server root), wait for its kernel, clear outputs, run every cell."""
        route = "lab/tree" if app == "lab" else "notebooks"
        self.page.goto(f"{base}/{route}/{notebook}?token={TOKEN}")
        self.wait("!!(window.jupyterapp && window.jupyterapp.shell.currentWidget"
                  " && window.jupyterapp.shell.currentWidget.sessionContext)", timeout=90)
        self.eval(
            """(async () => {
                const app = window.jupyterapp;
                const panel = app.shell.currentWidget;
                await panel.context.ready;
                await panel.sessionContext.ready;
                await app.commands.execute('notebook:clear-all-cell-outputs');
                app.commands.execute('notebook:run-all-cells');
            })()"""
        )
