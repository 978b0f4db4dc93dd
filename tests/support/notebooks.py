"""Helpers for tests that run the teaching notebooks: where they are, a workspace laid out like the
repository, an environment of their own, and what an executed notebook holds.

Plain functions, not fixtures (those live in ``tests/conftest.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ROOT", "NOTEBOOKS_DIR", "NOTEBOOKS", "QUICKSTART", "TEACHING_ORDER", "workspace", "isolate",
           "outputs", "errors"]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
QUICKSTART = NOTEBOOKS_DIR / "01_quickstart.ipynb"
TEACHING_ORDER = ["01_quickstart", "02_images_and_sweeps", "03_speech", "04_chat_and_vision",
                  "05_history_and_provenance", "06_gpu_server"]


def workspace(folder: Path) -> Path:
    """``folder/notebooks`` holding copies of the notebooks, beside ``folder/tests/support/stand_in`` (a link
    to the stand-ins), so a notebook's relative paths resolve as they do in the repository while whatever
    it writes stays out of the checkout. Returns ``folder/notebooks``."""
    target = folder / "notebooks"
    target.mkdir(parents=True)
    for notebook in NOTEBOOKS:
        shutil.copy(notebook, target / notebook.name)
    (folder / "tests" / "support").mkdir(parents=True)
    (folder / "tests" / "support" / "stand_in").symlink_to(ROOT / "tests" / "support" / "stand_in")
    return target


def isolate(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Kernels started after this inherit a private server registry, history and simulator storage, and
    no server URL: a notebook must find (or start) its servers by itself, as in a fresh JupyterLab."""
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(folder / "registry"))
    monkeypatch.setenv("VOMNI_HISTORY", str(folder / "history"))
    monkeypatch.setenv("VOMNI_SIM_STORAGE", str(folder / "storage"))
    monkeypatch.setenv("VOMNI_SIM_VOICES_DIR", str(folder / "voices"))
    for name in ("VOMNI_URL", "VOMNI_BASE_URL", "VOMNI_SERVER", "VOMNI_VLLM_EXECUTABLE"):
        monkeypatch.delenv(name, raising=False)


def outputs(nb: Any) -> list[Any]:
    """Every output of every code cell, in order."""
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def errors(nb: Any) -> list[str]:
    """The error outputs, as ``ename: evalue`` lines."""
    return [f"{out.get('ename')}: {out.get('evalue')}" for out in outputs(nb) if out.get("output_type") == "error"]
