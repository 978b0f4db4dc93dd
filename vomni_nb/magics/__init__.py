"""vomni_nb's IPython magics, one ``Magics`` class per topic module (as IPython's own are).

``_common``  ``VomniMagics`` (the settings every family shares, ``%config VomniMagics.<name>``), the shared
             flags, prompt filling, short errors, and :func:`~vomni_nb.magics._common.run_generation`
``server``   ``%omni_server`` (``ServerMagics``)
``image``    ``%%omni_image`` (``ImageMagics``): one image, or a sweep / X/Y grid
``edit``     ``%%omni_edit SOURCE`` (``EditMagics``)
``history``  ``%omni_history`` and ``%omni_rerun`` (``HistoryMagics``)
``speech``   ``%%omni_speak`` and ``%omni_voice`` (``SpeechMagics``)
``chat``     ``%%omni_chat`` (``ChatMagics``)
``video``    ``%%omni_video`` (``VideoMagics``)
``studio``   ``%omni_studio`` (``StudioMagics``)

``%load_ext vomni_nb`` registers every class in :data:`MAGICS` (plus ``VomniMagics`` itself, so ``%config
VomniMagics`` lists the settings); ``%unload_ext`` removes them again, so ``%reload_ext vomni_nb`` works
and keeps what was configured. Loading imports IPython's magic machinery and these modules only: the
client, PIL, sqlite3, ipywidgets and the server manager load when a magic first runs
(``tests/magics/test_loading.py`` checks it in a fresh interpreter).

A new family: a module with one ``@magics_class`` subclass of ``VomniMagics``, added to :data:`MAGICS`.
"""

from __future__ import annotations

from typing import Any

from vomni_nb.magics._common import VomniMagics
from vomni_nb.magics.chat import ChatMagics
from vomni_nb.magics.edit import EditMagics
from vomni_nb.magics.history import HistoryMagics
from vomni_nb.magics.image import ImageMagics
from vomni_nb.magics.server import ServerCommandError, ServerMagics
from vomni_nb.magics.speech import SpeechMagics
from vomni_nb.magics.studio import StudioMagics
from vomni_nb.magics.video import VideoMagics

__all__ = ["VomniMagics", "ServerMagics", "ImageMagics", "EditMagics", "HistoryMagics", "SpeechMagics", "ChatMagics",
           "VideoMagics", "StudioMagics", "ServerCommandError", "MAGICS", "load_ipython_extension",
           "unload_ipython_extension"]

MAGICS: tuple[type[VomniMagics], ...] = (ServerMagics, ImageMagics, EditMagics, HistoryMagics, SpeechMagics, ChatMagics,
                                         VideoMagics, StudioMagics)
_ALL: tuple[type[VomniMagics], ...] = (VomniMagics, *MAGICS)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext vomni_nb``: register the magics (a second load replaces the first)."""
    unload_ipython_extension(ipython)
    ipython.register_magics(*(cls(shell=ipython) for cls in _ALL))


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext vomni_nb``: remove our magics and settings objects; what was configured with ``%config``
    is kept in the shell's config, so a reload starts with it."""
    manager = ipython.magics_manager
    ours = [obj for obj in ipython.configurables if isinstance(obj, VomniMagics)]
    for obj in ours:
        _keep_configured(ipython, obj)
        ipython.configurables.remove(obj)
        for kind, table in obj.magics.items():
            for name in table:
                if getattr(manager.magics[kind].get(name), "__self__", None) is obj:
                    del manager.magics[kind][name]
        if manager.registry.get(type(obj).__name__) is obj:
            del manager.registry[type(obj).__name__]


def _keep_configured(ipython: Any, obj: VomniMagics) -> None:
    section = ipython.config[type(obj).__name__]
    for name in obj.trait_names(config=True):
        value = getattr(obj, name)
        if value is not None and type(obj) is VomniMagics:
            section[name] = value
