"""The link a preview carries to its full file works where it is offered: a file saved under the
notebook's folder is a relative link, which JupyterLab and Notebook 7 serve (``/files/...``). A file in
the history store, outside the server's root, gets its path as text instead (no dead ``file://`` link)."""

from __future__ import annotations

import io
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from tests.support.lab import CHROMIUM_ARGS, TOKEN, jupyter_server
from vomni_nb import _embeds
from vomni_nb.provenance import Provenance
from vomni_nb.results import ImageResult, Stored

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


def _picture() -> ImageResult:
    size = (1024, 1024)
    picture = Image.merge("RGB", [Image.linear_gradient("L").resize(size), Image.radial_gradient("L").resize(size),
                                  Image.effect_noise(size, 24)])
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return ImageResult(data=buffer.getvalue(), format="png", width=1024, height=1024,
                       provenance=Provenance(kind="image", prompt="a gradient", seed=1))


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_a_saved_file_is_linked_and_served(chromium: str, tmp_path: Path, app: str) -> None:
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "project"
    image = _picture()
    saved = image.save(folder / "out")  # what --save out/ does, in the notebook's folder
    linked = _embeds.figure(image, saved=saved, base=folder)
    in_store = _embeds.figure(image, saved=tmp_path / "outside" / "store.png", base=folder)
    assert linked.link == "out/image-1.png" and in_store.link is None and "<a " not in in_store.html
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    cell = nbformat.v4.new_code_cell("image")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": linked.text, "text/html": linked.html})]
    notebook.cells = [cell]
    nbformat.write(notebook, folder / "linked.ipynb")
    with jupyter_server(tmp_path, app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            route = "lab/tree" if app == "lab" else "notebooks"
            page.goto(f"{base}/{route}/project/linked.ipynb?token={TOKEN}")
            page.wait_for_selector("figure a", timeout=90_000)
            href = page.eval_on_selector("figure a", "a => a.href")
            assert href.split("?")[0] == f"{base}/files/project/out/image-1.png"  # resolved against the notebook
            answer = page.request.get(href)
            assert answer.status == 200 and answer.body() == saved.read_bytes()
        finally:
            browser.close()
