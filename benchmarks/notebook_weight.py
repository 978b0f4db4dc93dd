"""What outputs weigh in a saved notebook, against what their full files weigh in the history store.

Starts vomni-sim image and TTS servers through the server manager, executes a notebook headless
(nbclient) with: a 16-image 1024x1024 sweep, one 1024x1024 image, one 512x512 image, and about a
minute of speech (WAV from the server), saves it, and prints each output's size in the .ipynb beside
the size of its files in the store (what embedding them whole would have cost, before base64).

    .venv/bin/python benchmarks/notebook_weight.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from vomni_nb._history import HistoryStore
from vomni_nb.server import ServerManager

SPEECH = " ".join([
    "The lighthouse keeper climbed the stairs again at dusk, as he had done every evening for thirty years.",
    "Below him the harbour filled with small boats coming home, their lanterns swinging in the swell.",
    "He wiped the great lens, trimmed the wick, and waited for the dark to settle over the water.",
    "Far out at sea a captain watched for the first flash of light, and counted the seconds between them.",
] * 4)

CELLS = [
    ("setup", "import vomni_nb\nfrom vomni_nb import OmniClient\nimages = OmniClient({image!r})\nvoice = OmniClient({tts!r})"),
    ("sweep of 16 at 1024x1024", "images.images('a red fox in the snow', seeds=list(range(16)), size='1024x1024')"),
    ("one 1024x1024 image", "images.image('a lighthouse at dusk', size='1024x1024', seed=7)"),
    ("one 512x512 image", "images.image('a lighthouse at dusk', size='512x512', seed=7)"),
    ("speech", "speech = voice.speak({text!r}, voice='vivian')\nspeech"),
    ("history table", "vomni_nb.history(n=25)"),
]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="vomni-weight-"))
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
    path = work / "weight.ipynb"
    nbformat.write(notebook, path)
    with HistoryStore(work / "history.sqlite3") as store:
        sizes = {entry.id: sum(f.size for f in entry.files) for entry in store.search(limit=None)}
    print(f"{'output':28} {'in the notebook':>16} {'full files':>12}")
    for (label, _), cell in zip(CELLS, notebook.cells):
        weight = sum(len(json.dumps(output)) for output in cell.outputs)
        record = next((o.metadata.get("vomni_nb", {}) for o in cell.outputs if "vomni_nb" in o.get("metadata", {})), {})
        ids = [item.get("history_id") for item in record.get("items", [record])]
        full = sum(sizes.get(i, 0) for i in ids if i is not None)
        extra = f"  ({record['duration_s']:.1f} s of speech)" if "duration_s" in record else ""
        print(f"{label:28} {weight:>16,} {full:>12,}{extra}")
    print(f"{'saved notebook':28} {path.stat().st_size:>16,}")
    print(f"work folder: {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
