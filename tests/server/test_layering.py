"""The server layer knows no UI: nothing under vomni_nb/server imports IPython, ipywidgets or vomni_nb.display,
and the watchdog script stays importable with the standard library alone (it runs without the package)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SERVER = Path(__file__).resolve().parents[2] / "vomni_nb" / "server"
UI = ("IPython", "ipywidgets", "vomni_nb.display", "vomni_nb.magics")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_server_module_imports_the_ui() -> None:
    found = {path.name: sorted(name for name in _imports(path) if name.startswith(UI))
             for path in SERVER.glob("*.py")}
    assert {name: ui for name, ui in found.items() if ui} == {}
    assert "sys.modules" not in "".join(path.read_text() for path in SERVER.glob("*.py"))


def test_the_watchdog_runs_on_the_standard_library_alone() -> None:
    # By path, as spawn_watchdog runs it, and with -S: no site-packages at all, so no psutil, httpx or vomni_nb.
    done = subprocess.run([sys.executable, "-s", "-S", str(SERVER / "watchdog.py"), "--help"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
