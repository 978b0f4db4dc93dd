"""What loading costs: ``import vomni_nb`` beside ``import openai`` and ``import httpx``, and ``%load_ext
vomni_nb`` beside ``%load_ext jupyter_ai_magics``, each in a fresh interpreter, several runs interleaved.

``%load_ext`` is timed inside a fresh IPython shell (the shell itself is made first, untimed, as a kernel
has it). jupyter-ai-magics has dependencies we do not want in our environment, so it lives in its own
venv, ``benchmarks/.venv-jupyter-ai``, made here on first use; where pip cannot install it the row says
"not installable here". Every interpreter reads compiled bytecode, as an installed package does (one
unmeasured run first writes it). The issue's targets: ``%load_ext vomni_nb`` under 50 ms and at least 10x faster
than jupyter_ai_magics, importing nothing but the magics classes.

    .venv/bin/python benchmarks/import_cost.py [--quick]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import _harness as harness
from _harness import Row

JUPYTER_AI_VENV = Path(__file__).resolve().parent / ".venv-jupyter-ai"
JUPYTER_AI_PYTHON = JUPYTER_AI_VENV / "bin" / "python"
# What %load_ext must not bring in (they load when a magic first runs).
HEAVY = ("httpx", "PIL", "sqlite3", "ipywidgets", "anywidget", "psutil", "vomni_nb.client", "vomni_nb.server",
         "vomni_nb.results", "vomni_nb._history", "asyncio")

IMPORT = """
import json, time
started = time.perf_counter()
import {module}
print(json.dumps(time.perf_counter() - started))
"""

LOAD_EXT = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
started = time.perf_counter()
shell.run_line_magic("load_ext", {extension!r})
took = time.perf_counter() - started
print(json.dumps([took, sorted(set(sys.modules) - before)]))
"""


def jupyter_ai_python(timeout: float = 420) -> tuple[Path | None, str]:
    """The venv's python with jupyter_ai_magics installed (made now if missing), or None and why not."""
    check = [str(JUPYTER_AI_PYTHON), "-c", "import importlib.metadata as m; print(m.version('jupyter_ai_magics'))"]
    if not JUPYTER_AI_PYTHON.exists():
        try:
            subprocess.run([sys.executable, "-m", "venv", str(JUPYTER_AI_VENV)],
                           check=True, capture_output=True, timeout=120)
            subprocess.run([str(JUPYTER_AI_VENV / "bin" / "pip"), "install", "-q", "jupyter-ai-magics", "ipython"],
                           check=True, capture_output=True, timeout=timeout)
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"not installable here ({type(exc).__name__})"
    try:
        version = subprocess.run(check, check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return None, "not installable here (jupyter_ai_magics does not import)"
    return JUPYTER_AI_PYTHON, f"jupyter-ai-magics {version}, own venv"


def _heavy(modules: list[str]) -> list[str]:
    return sorted({name for name in modules for heavy in HEAVY if name == heavy or name.startswith(heavy + ".")})


def run(quick: bool = False) -> list[Row]:
    runs = 2 if quick else 7
    python = sys.executable
    for module in ("openai", "vomni_nb", "httpx"):  # first imports write the bytecode the measured ones read
        harness.fresh_python(python, IMPORT.format(module=module))
    harness.fresh_python(python, LOAD_EXT.format(extension="vomni_nb"))
    imports: dict[str, list[float]] = {"import openai": [], "import vomni_nb": [], "import httpx": []}
    for _ in range(runs):
        for name in imports:
            imports[name].append(harness.fresh_python(python, IMPORT.format(module=name.split()[1])))
    rows = [harness.summary("import (fresh interpreter)", name, values, "ms", scale=1000,
                            baseline=name == "import openai") for name, values in imports.items()]
    ours: list[float] = []
    loaded: list[str] = []
    theirs: list[float] = []
    their_python, their_note = jupyter_ai_python()
    if their_python is not None:
        harness.fresh_python(their_python, LOAD_EXT.format(extension="jupyter_ai_magics"))
    for index in range(runs):
        took, loaded = harness.fresh_python(python, LOAD_EXT.format(extension="vomni_nb"))
        ours.append(took)
        if their_python is not None and index < max(1, runs - 2):  # seconds each: fewer runs suffice
            took, _ = harness.fresh_python(their_python, LOAD_EXT.format(extension="jupyter_ai_magics"))
            theirs.append(took)
    benchmark = "%load_ext (fresh IPython shell)"
    ours_modules = [name for name in loaded if name.startswith("vomni_nb")]
    heavy = _heavy(loaded)
    rows.append(harness.summary(
        benchmark, "%load_ext vomni_nb", ours, "ms", scale=1000,
        note=f"{len(loaded)} modules loaded ({len(ours_modules)} of vomni_nb); "
             + (f"heavy: {', '.join(heavy)}" if heavy else "no httpx, PIL, sqlite3, widgets or client"),
        modules=loaded))
    if theirs:
        rows.append(harness.summary(benchmark, "%load_ext jupyter_ai_magics", theirs, "ms", scale=1000,
                                    baseline=True, note=their_note))
    else:
        rows.append(Row(benchmark, "%load_ext jupyter_ai_magics", None, "ms", baseline=True, note=their_note))
    return rows


if __name__ == "__main__":
    harness.main(run)
