"""vomni_nb: vLLM-Omni in Jupyter. Nothing heavy is imported here."""

from __future__ import annotations

from vomni_nb.errors import *  # noqa: F401,F403
from vomni_nb.errors import __all__ as _error_names

__version__ = "0.1.0"

__all__ = ["__version__", *_error_names]
