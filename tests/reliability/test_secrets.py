"""Every notebook in notebooks/, executed against simulators that require an API key: the key is found in no
output, log file, history row or stored file, saved file, repr or error message.

Each notebook runs as the headless tests run it (``tests/support/notebooks.py``: a workspace beside the
stand-ins, a private registry, history and storage), changed in one way only: every ``%omni_server
start|attach`` line gets ``--api-key KEY`` (before any ``--``), and the kernel has ``VOMNI_API_KEY=KEY`` (for
clients made from a URL, which ``VOMNI_BASE_URL`` points at a keyed vomni-sim this test starts). A cell after
the first start checks that the notebook's servers refuse a request without the key (so the key is in play).
Then every byte the run left is searched, except the two places the key must be: the cells' sources (the
reader typed it) and the server registry (the next kernel needs it to reuse a kept server; the file is the
owner's alone).
"""

from __future__ import annotations

import json
import re
import secrets
import stat
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support.notebooks import NOTEBOOKS, isolate, workspace
from tests.support.sims import IMAGE_MODEL, launch_sim

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SERVER_LINE = re.compile(r"^(?P<head>.*%omni_server\s+(?:start|attach)\b.*?)(?P<tail>\s+--\s.*)?$", re.M)
CHECK_CELL = """\
import httpx, vomni_nb
refused = {s.url: httpx.get(s.url + "/v1/models").status_code for s in vomni_nb.default_manager().list_servers()}
print("KEYCHECK", sorted(set(refused.values())))
"""


def _with_key(notebook: Path, key: str) -> tuple[nbformat.NotebookNode, int]:
    """The notebook with the key on every start/attach line, and the index of the check cell added."""
    nb = nbformat.read(notebook, as_version=4)
    check = None
    for index, cell in enumerate(list(nb.cells)):
        if cell.cell_type == "code" and SERVER_LINE.search(cell.source):
            cell.source = SERVER_LINE.sub(lambda m: f"{m['head']} --api-key {key}{m['tail'] or ''}", cell.source)
            check = index + 1 if check is None else check
    assert check is not None, f"{notebook.name} starts no server: nothing here would use the key"
    nb.cells.insert(check, nbformat.v4.new_code_cell(CHECK_CELL))
    return nb, check


def _fragments(key: str) -> list[bytes]:
    """The key, and enough of either half of it that a truncated or partly masked copy is still found."""
    secret = key.split("-")[-1]
    return [key.encode(), secret[:12].encode(), secret[-12:].encode()]


def _leaks(folder: Path, key: str, skip: set[Path]) -> list[str]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and p not in skip):
        data = path.read_bytes()
        if any(fragment in data for fragment in _fragments(key)):
            found.append(str(path.relative_to(folder)))
    return found


@pytest.mark.timeout(600)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_no_notebook_leaves_the_api_key_anywhere(notebook: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"sk-vomni-{secrets.token_hex(16)}"
    isolate(monkeypatch, tmp_path)
    work = workspace(tmp_path)
    registry = tmp_path / "registry"
    (tmp_path / "sim-logs").mkdir()
    sim = launch_sim(IMAGE_MODEL, log_dir=tmp_path / "sim-logs", api_key=key)
    try:
        monkeypatch.setenv("VOMNI_API_KEY", key)
        monkeypatch.setenv("VOMNI_BASE_URL", sim.url)
        monkeypatch.delenv("VLLM_API_KEY", raising=False)
        nb, check = _with_key(notebook, key)
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    finally:
        sim.stop()
    saved = work / notebook.name
    nbformat.write(nb, saved)  # over the workspace's copy: the executed notebook, as a reader would save it
    printed = "".join(out.get("text", "") for out in nb.cells[check].outputs)
    assert "KEYCHECK [401]" in printed, printed  # the notebook's servers all want the key
    # The search finds the key where it must be, so finding it nowhere else means something.
    assert key.encode() in saved.read_bytes()
    outputs = json.dumps([cell.get("outputs", []) for cell in nb.cells]).encode()
    assert not any(fragment in outputs for fragment in _fragments(key)), "the key is in an output"
    registry_files = {path for path in registry.rglob("*") if path.is_file()} if registry.exists() else set()
    for path in registry_files:
        if key.encode() in path.read_bytes():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} holds the key and others can read it"
    assert (tmp_path / "history").exists(), "the notebook recorded nothing: the history search would prove nothing"
    assert _leaks(tmp_path, key, skip=registry_files | {saved}) == []
