"""The public surface: an explicit, importable ``__all__`` and a light ``import vomni_nb``."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

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
            # Interrupted alone stands outside: a Ctrl-C must never be caught by `except Exception`.
            root = KeyboardInterrupt if name == "Interrupted" else vomni_nb.errors.VomniError
            assert issubclass(obj, root), name
            assert name in doc, f"{name} missing from the tree drawn in errors.py"
    assert not issubclass(vomni_nb.errors.Interrupted, Exception)


def test_import_is_light() -> None:
    # Nothing heavy at import: no IPython, widgets, simulator or numpy until they are used.
    code = (
        "import sys, vomni_nb; "
        "heavy = [m for m in ('IPython', 'ipywidgets', 'fastapi', 'uvicorn', 'numpy', 'av', 'PIL') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_loads_no_httpx_pillow_or_ipython() -> None:
    # PEP 562: the package root imports only the error tree; clients, results and servers load on first use.
    code = "import sys, vomni_nb; print(sorted(m for m in ('httpx', 'PIL', 'IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = "import sys, vomni_nb; vomni_nb.OmniClient; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"  # ... and a name still loads its module when used


def test_lazy_names_are_the_modules_objects() -> None:
    import vomni_nb.async_client
    import vomni_nb.client
    import vomni_nb.results
    import vomni_nb.server
    import vomni_nb.streams

    assert vomni_nb.OmniClient is vomni_nb.client.OmniClient
    assert vomni_nb.AsyncOmniClient is vomni_nb.async_client.AsyncOmniClient
    assert vomni_nb.ImageResult is vomni_nb.results.ImageResult and vomni_nb.ChatStream is vomni_nb.streams.ChatStream
    assert vomni_nb.default_manager is vomni_nb.server.default_manager
    assert set(vomni_nb.__all__) <= set(dir(vomni_nb))
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        vomni_nb.NoSuchThing  # noqa: B018


def _modules() -> list[object]:
    """Every module of the package but the simulator's (a separate program with its own entry point)."""
    root = Path(vomni_nb.__file__).parent
    names: list[object] = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[1] == "sim" or parts[-1] == "__main__":
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names.append(name)
    return names


def test_the_protocol_package_lists_every_submodule() -> None:
    # Its __all__ is the list of its submodules (it imports none of them); batch, capabilities, mp4, limits,
    # body and untrusted were added without it.
    import vomni_nb.protocol

    root = Path(vomni_nb.protocol.__file__).parent
    assert sorted(vomni_nb.protocol.__all__) == sorted(p.stem for p in root.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module_name", _modules())
def test_every_module_lists_only_public_names_that_exist(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert isinstance(names, list), f"{module_name} has no __all__"
    assert len(names) == len(set(names))
    for name in names:
        assert not name.startswith("_") or name == "__version__", f"{module_name}.__all__ lists private {name}"
        assert hasattr(module, name) or importlib.util.find_spec(f"{module_name}.{name}"), f"{module_name}.{name}"


def test_status_errors_pin_their_codes() -> None:
    E = vomni_nb.errors
    expected = {E.BadRequestError: 400, E.AuthenticationError: 401, E.NotFoundError: 404, E.ConflictError: 409,
                E.PayloadTooLargeError: 413, E.UnprocessableEntityError: 422, E.RateLimitError: 429,
                E.ServerError: 500, E.OverloadedError: 503, E.GatewayTimeoutError: 504,
                E.InsufficientStorageError: 507}
    for cls, code in expected.items():
        assert cls.status_code == code and cls("x").status_code == code, cls
        assert type(E.status_error("x", status_code=code)) is cls
    assert E.ServerError("x", status_code=502).status_code == 502  # a 5xx without a class of its own


def test_history_is_the_function_users_call() -> None:
    # The store's package is private (`_history`) so importing it can never shadow `vomni_nb.history`.
    import vomni_nb._history  # noqa: F401

    assert callable(vomni_nb.history) and vomni_nb.history.__module__ == "vomni_nb._history.store"
    assert vomni_nb.HistoryStore.__module__ == "vomni_nb._history.store"
