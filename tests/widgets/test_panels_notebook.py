"""The ServerPanel and the Studio in a notebook executed headless by nbclient (a real kernel, no front end, no
widget manager), against real vomni-sim servers the notebook starts through the manager: the same steps as
the browser tests, from code instead of clicks. Every cell completes and leaves static outputs only: the
panel's table (updated in place after a Stop), the Studio's summary with its images, the pinned image.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.sims import IMAGE_MODEL, STAND_IN, TTS_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(240)]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _cells(tmp: Path) -> list[str]:
    return [
        "import asyncio\n"
        "from vomni_nb import HistoryStore, ServerPanel, Studio\n"
        "from vomni_nb.server import ServerManager\n"
        f"m = ServerManager(registry_dir={str(tmp / 'registry')!r}, log_dir={str(tmp / 'logs')!r}, "
        f"nvidia_smi={str(STAND_IN / 'nvidia-smi')!r})\n"
        f"image = m.start({IMAGE_MODEL!r}, sim=True, extra_args=['--latency', '3'])\n"
        f"speech = m.start({TTS_MODEL!r}, sim=True)\n"
        f"store = HistoryStore({str(tmp / 'history.sqlite3')!r})",
        "panel = ServerPanel(m)\npanel",
        f"studio = Studio('a lighthouse at dusk', manager=m, store=store, steps=8, save_dir={str(tmp / 'saved')!r})\n"
        "studio",
        "made = await studio.generate(seed=42)\nprint(studio.status, [r.seed for r in made])",
        "task = studio.generate(seed=7)\nawait asyncio.sleep(0.5)",
        "print('meanwhile:', studio.status)",
        "await asyncio.sleep(0.5)\nprint('cancel:', studio.cancel())\n"
        "try:\n    await task\nexcept asyncio.CancelledError:\n    print('after cancel:', studio.status)",
        "studio.pin()",
        "print(m.stop(speech))\nsnapshot = panel.refresh()",
        "studio.close()\npanel.close()\nm.shutdown()",
    ]


def test_headless_notebook_keeps_static_panel_and_studio_outputs(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in _cells(tmp_path)]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [output for cell in nb.cells for output in cell.outputs]
    assert not any(output.output_type == "error" for output in outputs), outputs
    assert not any(WIDGET_MIME in output.get("data", {}) for output in outputs)
    assert "widgets" not in nb.metadata
    text = [("".join(o.get("text", "")) or o.get("data", {}).get("text/plain", "")) for o in
            (cell.outputs[0] if cell.outputs else {} for cell in nb.cells)]

    # The panel: a static table, updated in place after the Stop, and marked closed at the end.
    (panel,) = nb.cells[1].outputs
    assert panel.data["text/plain"].startswith("vomni_nb servers at")
    assert f"{IMAGE_MODEL}: ready" in panel.data["text/plain"] and f"{TTS_MODEL}: ready" not in panel.data["text/plain"]
    assert "GPU 0 NVIDIA H100 80GB HBM3: 30.2 GiB of 79.6 GiB" in panel.data["text/plain"]
    assert "(panel closed)" in panel.data["text/html"] and "<table" in panel.data["text/html"]

    # The Studio: its summary holds the image it made (a preview), with seed and history id.
    (studio,) = nb.cells[2].outputs
    assert studio.data["text/plain"].startswith("Studio (closed)")
    assert "seed 42 · 1024x1024 · history #1" in studio.data["text/plain"]
    assert studio.data["text/html"].count("data:image/jpeg;base64,") == 1

    assert text[3].startswith("done: 1 image in") and text[3].rstrip().endswith("[42]")
    assert text[5].startswith("meanwhile: running: generating 1 image")  # this cell ran during the generation
    assert "cancel: True" in text[6] and "after cancel: cancelled: cancelled after" in "".join(
        o.get("text", "") for o in nb.cells[6].outputs)
    log = next((tmp_path / "logs").glob("Tongyi-MAI*"))
    assert "aborted." in log.read_text()

    (pinned,) = nb.cells[7].outputs
    assert "<img" in pinned.data["text/html"]  # a 1024x1024 image is pinned as a light preview
    assert pinned.metadata["vomni_nb"]["seed"] == 42 and pinned.metadata["vomni_nb"]["history_id"] == 1
    assert text[8].startswith(f"stopped {TTS_MODEL}")
