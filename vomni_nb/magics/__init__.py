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

``%load_ext vomni_nb`` registers ``VomniMagics`` (so ``%config VomniMagics`` lists the settings) and declares
every magic in :data:`LAZY` to IPython without importing it (``register_lazy``, as IPython declares its own
rarely used magics): a family's module is imported, and its class registered, the first time one of its
magics is used (``%%omni_image?`` included), through the module's ``load_ipython_extension``. So loading
imports this package, ``_common`` and IPython's magic machinery only: building the families' argument
parsers alone took longer than the 50 ms %load_ext may take (``benchmarks/import_cost.py``). A family
loaded later starts with the settings ``VomniMagics`` holds then. ``%unload_ext`` removes everything again,
so ``%reload_ext vomni_nb`` works and keeps what was configured. The classes are still importable from here
(``from vomni_nb.magics import ImageMagics``: loaded on first access).

A new family: a module with one ``@magics_class`` subclass of ``VomniMagics`` and a ``load_ipython_extension``
that calls :func:`add_family`, its magics added to :data:`LAZY` and its class to :data:`FAMILIES`.
"""

from __future__ import annotations

import importlib
import inspect
import types
from collections.abc import Mapping
from typing import Any

from vomni_nb.magics._common import VomniMagics

__all__ = ["VomniMagics", "ServerMagics", "ImageMagics", "EditMagics", "HistoryMagics", "SpeechMagics", "ChatMagics",
           "VideoMagics", "StudioMagics", "ServerCommandError", "MAGICS", "LAZY", "FAMILIES", "add_family",
           "load_ipython_extension", "unload_ipython_extension"]

# class -> the module that defines it
FAMILIES: Mapping[str, str] = {
    "ServerMagics": "vomni_nb.magics.server",
    "ImageMagics": "vomni_nb.magics.image",
    "EditMagics": "vomni_nb.magics.edit",
    "HistoryMagics": "vomni_nb.magics.history",
    "SpeechMagics": "vomni_nb.magics.speech",
    "ChatMagics": "vomni_nb.magics.chat",
    "VideoMagics": "vomni_nb.magics.video",
    "StudioMagics": "vomni_nb.magics.studio",
}
# magic -> (its kind, the module whose load_ipython_extension registers it)
LAZY: Mapping[str, tuple[str, str]] = {
    "omni_server": ("line", "vomni_nb.magics.server"),
    "omni_image": ("cell", "vomni_nb.magics.image"),
    "omni_edit": ("cell", "vomni_nb.magics.edit"),
    "omni_history": ("line", "vomni_nb.magics.history"),
    "omni_rerun": ("line", "vomni_nb.magics.history"),
    "omni_speak": ("cell", "vomni_nb.magics.speech"),
    "omni_voice": ("line", "vomni_nb.magics.speech"),
    "omni_chat": ("cell", "vomni_nb.magics.chat"),
    "omni_video": ("cell", "vomni_nb.magics.video"),
    "omni_studio": ("line", "vomni_nb.magics.studio"),
}
_ELSEWHERE = {"ServerCommandError": "vomni_nb.magics.server"}


def __getattr__(name: str) -> Any:
    """The family classes (and ``MAGICS``, all of them) load on first access, as the magics themselves do."""
    if name == "MAGICS":
        return tuple(getattr(importlib.import_module(module), cls) for cls, module in FAMILIES.items())
    module = FAMILIES.get(name) or _ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vomni_nb.magics' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext vomni_nb``: register the settings and declare every magic (a second load replaces the first)."""
    unload_ipython_extension(ipython)
    ipython.register_magics(VomniMagics(shell=ipython))
    manager = ipython.magics_manager
    # IPython 9 declares a lazy magic per kind (so %omni_image does not stand for the cell magic); IPython 8
    # takes the name and the module only.
    per_kind = "magic_kind" in inspect.signature(manager.register_lazy).parameters
    for name, (kind, module) in LAZY.items():
        if per_kind:
            manager.register_lazy(name, module, kind)
        else:
            manager.register_lazy(name, module)


def add_family(ipython: Any, family: type[VomniMagics]) -> None:
    """Register ``family`` (a family module's ``load_ipython_extension`` calls this on first use), starting from
    the settings the shared ``VomniMagics`` holds now (``%config`` set them only on the objects that existed)."""
    magics = family(shell=ipython)
    shared = next((obj for obj in ipython.configurables if type(obj) is VomniMagics), None)
    if shared is not None:
        for name in shared.trait_names(config=True):
            if getattr(magics, name) is None and getattr(shared, name) is not None:
                setattr(magics, name, getattr(shared, name))
    ipython.register_magics(magics)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext vomni_nb``: remove our magics, the declared ones not used yet, and our settings objects;
    what was configured with ``%config`` is kept in the shell's config, so a reload starts with it."""
    manager = ipython.magics_manager
    for obj in [obj for obj in ipython.configurables if isinstance(obj, VomniMagics)]:
        _keep_configured(ipython, obj)
        ipython.configurables.remove(obj)
        for kind, table in obj.magics.items():
            for name in table:
                found = manager.magics[kind].get(name)
                # Only bound methods are looked into: any other stand-in may import on attribute access.
                if isinstance(found, types.MethodType) and found.__self__ is obj:
                    del manager.magics[kind][name]
        if manager.registry.get(type(obj).__name__) is obj:
            del manager.registry[type(obj).__name__]
    modules = {module for _, module in LAZY.values()}
    for name, (kind, module) in LAZY.items():
        if manager.lazy_magics.get(name) == module:
            del manager.lazy_magics[name]
        for table in manager.magics.values():
            if getattr(type(table.get(name)), "__name__", "") == "LazyMagic":  # IPython 9's stand-in, unused
                del table[name]
    # So that the next load's declarations load the families again, not "already loaded".
    ipython.extension_manager.loaded.difference_update(modules)
    getattr(manager, "_loaded_lazy", set()).difference_update(modules)


def _keep_configured(ipython: Any, obj: VomniMagics) -> None:
    section = ipython.config[type(obj).__name__]
    for name in obj.trait_names(config=True):
        value = getattr(obj, name)
        if value is not None and type(obj) is VomniMagics:
            section[name] = value
