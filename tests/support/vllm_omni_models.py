"""vLLM-Omni 0.30.0's own pydantic protocol models, imported without vllm or torch (reference §9).

The wheel is installed with ``--no-deps``; importing it normally would run package ``__init__``s
that pull in torch and vllm. We register empty package modules whose ``__path__`` points at the
real directories, so only the protocol submodules themselves execute.

Tests run with ``--import-mode=importlib``, so import this file by path::

    from tests.support.vllm_omni_models import load      # works: the repo root is on sys.path (rootdir)
    images = load("images")   # vllm_omni.entrypoints.openai.protocol.images
    images.ImageGenerationResponse.model_validate(resp.json())
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
import warnings
from pathlib import Path

__all__ = ["load", "available"]

_PACKAGES = (
    "vllm_omni",
    "vllm_omni.entrypoints",
    "vllm_omni.entrypoints.openai",
    "vllm_omni.entrypoints.openai.protocol",
    "vllm_omni.inputs",
)


@functools.lru_cache(maxsize=1)
def _root() -> Path | None:
    existing = sys.modules.get("vllm_omni")
    if existing is not None and getattr(existing, "__path__", None):
        return Path(list(existing.__path__)[0])
    spec = importlib.util.find_spec("vllm_omni")  # finds the directory without running __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def available() -> bool:
    return _root() is not None


def _install_stubs(root: Path) -> None:
    for name in _PACKAGES:
        existing = sys.modules.get(name)
        if existing is not None and getattr(existing, "__vomni_stub__", False):
            continue
        if existing is not None:
            continue  # a real import already happened (torch present): leave it alone
        module = types.ModuleType(name)
        module.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
        module.__vomni_stub__ = True  # type: ignore[attr-defined]
        sys.modules[name] = module
    if "vllm_omni.inputs.data" not in sys.modules:
        # videos.py imports only this constant from a module that needs torch.
        data = types.ModuleType("vllm_omni.inputs.data")
        data.DIFFUSION_QUALITY_LEVELS = ("lossless", "high")  # type: ignore[attr-defined]
        sys.modules["vllm_omni.inputs.data"] = data


def load(name: str) -> types.ModuleType:
    """``vllm_omni.entrypoints.openai.protocol.<name>`` (images, audio, videos, ...)."""
    root = _root()
    if root is None:
        raise ModuleNotFoundError("vllm-omni is not installed: pip install --no-deps vllm-omni==0.30.0")
    _install_stubs(root)
    # The wheel's audio models still use pydantic's deprecated class-based Config; that warning is
    # theirs, not ours, and warnings are errors in this test suite.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return importlib.import_module(f"vllm_omni.entrypoints.openai.protocol.{name}")
