"""The public surface: an explicit, importable ``__all__`` and a light ``import vomni_nb``."""

from __future__ import annotations

import subprocess
import sys

import vomni_nb
import vomni_nb.errors


def test_all_names_exist_and_are_unique() -> None:
    assert len(vomni_nb.__all__) == len(set(vomni_nb.__all__))
    for name in vomni_nb.__all__:
        assert hasattr(vomni_nb, name), name


def test_all_has_the_core_api() -> None:
    for name in ("OmniClient", "AsyncOmniClient", "ServerManager", "VomniError", "ImageResult", "SpeechResult"):
        assert name in vomni_nb.__all__, name


def test_every_error_is_under_vomni_error_and_drawn_in_the_docstring() -> None:
    doc = vomni_nb.errors.__doc__ or ""
    for name in vomni_nb.errors.__all__:
        obj = getattr(vomni_nb.errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, vomni_nb.errors.VomniError), name
            assert name in doc, f"{name} missing from the tree drawn in errors.py"


def test_import_is_light() -> None:
    # Nothing heavy at import: no IPython, widgets, simulator or numpy until they are used.
    code = (
        "import sys, vomni_nb; "
        "heavy = [m for m in ('IPython', 'ipywidgets', 'fastapi', 'uvicorn', 'numpy', 'av', 'PIL') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
