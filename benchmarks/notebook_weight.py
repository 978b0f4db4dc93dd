"""What outputs weigh in a saved notebook, against what their full files weigh in the history store.

Starts vomni-sim image and TTS servers through the server manager, executes a notebook headless
(nbclient) with: a 16-image 1024x1024 sweep, one 1024x1024 image, one 512x512 image, and about a
minute of speech (WAV from the server), saves it, and reports the sweep's and the speech's outputs in the
.ipynb beside what embedding their full files would weigh (the files in the history store, as base64),
and the whole saved notebook.

    .venv/bin/python benchmarks/notebook_weight.py [--quick]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import _harness as harness
from _harness import Row

SPEECH = " ".join([
    "The lighthouse keeper climbed the stairs again at dusk, as he had done every evening for thirty years.",
    "Below him the harbour filled with small boats coming home, their lanterns swinging in the swell.",
    "He wiped the great lens, trimmed the wick, and waited for the dark to settle over the water.",
    "Far out at sea a captain watched for the first flash of light, and counted the seconds between them.",
] * 3)

CELLS = [
    ("setup", "import vomni_nb\nfrom vomni_nb import OmniClient\nimages = OmniClient({image!r})\nvoice = OmniClient({tts!r})"),
    ("sweep of 16 at 1024x1024", "images.images('a red fox in the snow', seeds=list(range(16)), size='1024x1024')"),
    ("one 1024x1024 image", "images.image('a lighthouse at dusk', size='1024x1024', seed=7)"),
    ("one 512x512 image", "images.image('a lighthouse at dusk', size='512x512', seed=7)"),
    ("speech", "speech = voice.speak({text!r}, voice='vivian')\nspeech"),
    ("history table", "vomni_nb.history(n=25)"),
]
WEIGHED = ("sweep of 16 at 1024x1024", "speech")


def run(quick: bool = False) -> list[Row]:
    from vomni_nb._history import HistoryStore
    from vomni_nb.server import ServerManager

    work = Path(tempfile.mkdtemp(prefix="vomni-weight-"))
    saved_history = os.environ.get("VOMNI_HISTORY")
    os.environ["VOMNI_HISTORY"] = str(work / "history.sqlite3")
    manager = ServerManager(registry_dir=work / "registry", log_dir=work / "logs", register_atexit=False)
    try:
        image = manager.start("Tongyi-MAI/Z-Image-Turbo", sim=True, port="auto")
        tts = manager.start("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", sim=True, port="auto")
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(code.format(image=image.url, tts=tts.url, text=SPEECH))
                          for _, code in CELLS]
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    finally:
        manager.shutdown()
        if saved_history is None:
            os.environ.pop("VOMNI_HISTORY", None)
        else:
            os.environ["VOMNI_HISTORY"] = saved_history
    path = work / "weight.ipynb"
    nbformat.write(notebook, path)
    with HistoryStore(work / "history.sqlite3") as store:
        sizes = {entry.id: sum(f.size for f in entry.files) for entry in store.search(limit=None)}
    rows: list[Row] = []
    for (label, _), cell in zip(CELLS, notebook.cells):
        if label not in WEIGHED:
            continue
        weight = sum(len(json.dumps(output)) for output in cell.outputs)
        record = next((o.metadata.get("vomni_nb", {}) for o in cell.outputs if "vomni_nb" in o.get("metadata", {})), {})
        ids = [item.get("history_id") for item in record.get("items", [record])]
        full = sum(sizes.get(i, 0) for i in ids if i is not None)
        extra = f", {record['duration_s']:.0f} s of speech" if "duration_s" in record else ""
        benchmark = f"notebook weight: {label}"
        rows.append(Row(benchmark, "full files embedded (base64)", full * 4 / 3 / 1e6, "MB", n=1, baseline=True,
                        note=f"{full / 1e6:.2f} MB of files in the history store{extra}"))
        how = "compressed audio + metadata" if label == "speech" else "one preview grid + links, metadata"
        rows.append(Row(benchmark, "vomni_nb output", weight / 1e6, "MB", n=1, note=how))
    rows.append(Row("notebook weight: whole saved notebook", "vomni_nb", path.stat().st_size / 1e6, "MB", n=1,
                    note=f"{len(CELLS)} cells: sweep, two images, speech, history table; target < 2 MB"))
    shutil.rmtree(work, ignore_errors=True)
    return rows


if __name__ == "__main__":
    harness.main(run)
