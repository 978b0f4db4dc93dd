"""vomni_nb: vLLM-Omni in Jupyter.

``import vomni_nb`` loads only the error tree; every other public name is imported on first use
(PEP 562), so ``%load_ext vomni_nb`` and ``import vomni_nb`` stay cheap (no httpx, Pillow or
IPython until a client, a result or a magic is used). ``__all__`` is the public API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vomni_nb.errors import *  # noqa: F401,F403
from vomni_nb.errors import __all__ as _error_names

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from vomni_nb._history import HistoryStore, history, read_recipe
    from vomni_nb._history.replay import Rerun, rerun
    from vomni_nb.conversation import Conversation, chat
    from vomni_nb.generation import edit, image
    from vomni_nb.grids import ImageGrid
    from vomni_nb.speech import speak, speak_batch
    from vomni_nb.sweeps import sweep
    from vomni_nb.videos import video
    from vomni_nb.async_client import AsyncOmniClient
    from vomni_nb.client import OmniClient
    from vomni_nb.protocol.limits import Limits
    from vomni_nb.results import ChatResult, FailedImage, ImageBatch, ImageResult, SpeechResult, VideoResult
    from vomni_nb.server import Server, ServerManager, ServerStatus, default_manager
    from vomni_nb.streams import AsyncChatStream, AsyncSpeechStream, ChatStream, SpeechStream
    from vomni_nb.widgets import ServerPanel, Studio

__version__ = "0.1.0"

__all__ = [
    "__version__",
    *_error_names,
    "ServerManager",
    "Server",
    "ServerStatus",
    "default_manager",
    "load_ipython_extension",
    "unload_ipython_extension",
    "OmniClient",
    "AsyncOmniClient",
    "Limits",
    "ImageResult",
    "ImageBatch",
    "SpeechResult",
    "ChatResult",
    "VideoResult",
    "ChatStream",
    "SpeechStream",
    "AsyncChatStream",
    "AsyncSpeechStream",
    "HistoryStore",
    "history",
    "ServerPanel",
    "Studio",
    "rerun",
    "Rerun",
    "read_recipe",
    "image",
    "edit",
    "sweep",
    "ImageGrid",
    "FailedImage",
    "speak",
    "speak_batch",
    "chat",
    "Conversation",
    "video",
]

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "ServerManager": "vomni_nb.server",
    "Server": "vomni_nb.server",
    "ServerStatus": "vomni_nb.server",
    "default_manager": "vomni_nb.server",
    "OmniClient": "vomni_nb.client",
    "AsyncOmniClient": "vomni_nb.async_client",
    "Limits": "vomni_nb.protocol.limits",
    "ImageResult": "vomni_nb.results",
    "ImageBatch": "vomni_nb.results",
    "SpeechResult": "vomni_nb.results",
    "ChatResult": "vomni_nb.results",
    "VideoResult": "vomni_nb.results",
    "ChatStream": "vomni_nb.streams",
    "SpeechStream": "vomni_nb.streams",
    "AsyncChatStream": "vomni_nb.streams",
    "AsyncSpeechStream": "vomni_nb.streams",
    "HistoryStore": "vomni_nb._history",
    "history": "vomni_nb._history",
    "ServerPanel": "vomni_nb.widgets",
    "Studio": "vomni_nb.widgets",
    "rerun": "vomni_nb._history.replay",
    "Rerun": "vomni_nb._history.replay",
    "read_recipe": "vomni_nb._history",
    "image": "vomni_nb.generation",
    "edit": "vomni_nb.generation",
    "sweep": "vomni_nb.sweeps",
    "ImageGrid": "vomni_nb.grids",
    "FailedImage": "vomni_nb.results",
    "speak": "vomni_nb.speech",
    "speak_batch": "vomni_nb.speech",
    "chat": "vomni_nb.conversation",
    "Conversation": "vomni_nb.conversation",
    "video": "vomni_nb.videos",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vomni_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext vomni_nb``: registers the magics (IPython is imported only now)."""
    from vomni_nb.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext vomni_nb`` (and so ``%reload_ext vomni_nb``): removes the magics again."""
    from vomni_nb.magics import unload_ipython_extension as unload

    unload(ipython)
