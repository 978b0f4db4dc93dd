"""vomni_nb: vLLM-Omni in Jupyter. Nothing heavy is imported here."""

from __future__ import annotations

from vomni_nb.errors import *  # noqa: F401,F403
from vomni_nb.errors import __all__ as _error_names

from vomni_nb.server import Server, ServerManager, ServerStatus, default_manager

from vomni_nb.client import OmniClient
from vomni_nb.aclient import AsyncOmniClient
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult, VideoResult
from vomni_nb.streams import AsyncChatStream, AsyncSpeechStream, ChatStream, SpeechStream

__version__ = "0.1.0"

__all__ = [
    "__version__",
    *_error_names,
    "ServerManager",
    "Server",
    "ServerStatus",
    "default_manager",
    "load_ipython_extension",
    "OmniClient",
    "AsyncOmniClient",
    "ImageResult",
    "ImageBatch",
    "SpeechResult",
    "ChatResult",
    "VideoResult",
    "ChatStream",
    "SpeechStream",
    "AsyncChatStream",
    "AsyncSpeechStream",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext vomni_nb``: registers the magics (IPython is imported only now)."""
    from vomni_nb.magics import load_ipython_extension as load

    load(ipython)
