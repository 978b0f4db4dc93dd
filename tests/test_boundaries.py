"""The layers stay apart: the pure client layers know no httpx, the server layer knows no UI, and the
simulator knows nothing of the client (it is our independent oracle: shared code would hide
symmetric bugs).

Imports are read from the source (every ``import``, lazy ones inside functions included) and, for
the client layers, checked once more by importing the module in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vomni_nb"

# Client layers that do no I/O: they must not even load httpx (a plan never sees an httpx object).
# Plan modules are found by name, so a new one (``_speech_plans`` was missed when listed by hand) is checked too.
PURE_CLIENT_MODULES = (["vomni_nb.protocol." + path.stem for path in sorted((PACKAGE / "protocol").glob("*.py"))
                        if path.stem != "__init__"]
                       + ["vomni_nb." + path.stem for path in sorted(PACKAGE.glob("_*plans.py"))]
                       + ["vomni_nb.protocol", "vomni_nb._core", "vomni_nb.provenance", "vomni_nb.results"])


def _imports(path: Path) -> list[str]:
    """Every module ``path`` imports (absolute names), anywhere in the file."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _strings(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Constant)
            and isinstance(node.value, str)]


def _offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for name in _imports(path):
            if name.startswith(forbidden):
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    return found


def test_every_plan_module_is_checked() -> None:
    assert {"vomni_nb._plans", "vomni_nb._speech_plans", "vomni_nb._video_plans",
            "vomni_nb._service_plans"} <= set(PURE_CLIENT_MODULES)


@pytest.mark.parametrize("module", PURE_CLIENT_MODULES)
def test_pure_client_layers_do_not_load_httpx(module: str) -> None:
    for path in [PACKAGE.parent / (module.replace(".", "/") + ".py"), PACKAGE.parent / module.replace(".", "/")
                 / "__init__.py"]:
        if path.exists():
            assert not [name for name in _imports(path) if name.split(".")[0] == "httpx"], path
    code = f"import sys, {module}; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {module} loads httpx"


def test_the_simulator_imports_nothing_of_the_client() -> None:
    offenders = [line for line in _offenders("sim", ("vomni_nb",)) if not line.split(" imports ")[1].startswith(
        "vomni_nb.sim")]
    assert offenders == []


def test_the_server_layer_knows_no_ui() -> None:
    offenders = _offenders("server", ("vomni_nb.display", "vomni_nb.magics", "vomni_nb.widgets", "IPython",
                                      "ipywidgets"))
    for path in sorted((PACKAGE / "server").rglob("*.py")):
        if "IPython" in _strings(path):
            offenders.append(f"{path.relative_to(PACKAGE.parent)} looks for IPython")
    assert offenders == []


def test_the_checks_see_lazy_imports(tmp_path: Path) -> None:
    # The scan must find an import inside a function, or a lazy import would slip through.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from vomni_nb.display import show\n    import IPython\n")
    assert _imports(sample) == ["vomni_nb.display", "vomni_nb.display.show", "IPython"]
