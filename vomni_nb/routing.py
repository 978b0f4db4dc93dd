"""Which server a generation goes to: a capability table from model id to tasks, and the routing rules.

The table is the client's own (the simulator keeps its family table in ``sim/families.py``, and the
client never imports the simulator: it is our independent oracle). It covers the same ids and
documented patterns; any other id (an attached server with a ``--served-model-name``, a model we do
not know yet) is *unknown*: it may do anything, so it is used only where nothing better is known.

Routing rules (``resolve(task, model=..., server=...)``), checked in this order:

1. ``server`` given (a ``Server`` handle, a manager name, model id, port, or a URL): that server. A URL
   the manager does not know is used as it is. When its model is known and cannot do ``task``, the
   request is refused before anything is sent (:class:`~vomni_nb.errors.WrongServerError`, naming the
   servers that could). ``model`` is then sent in the request.
2. ``model`` given: every server of the manager that serves it (several are replicas: a sweep spreads
   over them); none is an error that says what to run (``%omni_server start MODEL --sim``).
3. Neither: the ``default_server`` setting when set (``%config VomniMagics.default_server``, else
   ``$VOMNI_SERVER``), as in rule 1.
4. Else the manager's servers whose model does ``task``: those for which it is the model's main task
   first (an edit model is not picked for text-to-image while an image model runs); one model among
   them, or the default server (``%omni_server use``), wins; several models is an error naming them.
5. Else a server of unknown model, when it is the default or the only server; else ``$VOMNI_BASE_URL``
   when the manager has no servers at all.
6. Else an error saying exactly what to start. A magic or a twin never starts a server by itself.

``Target`` is what a twin sends to: one server (URL, model, key) and its replicas. A request to an
unknown-model server that the server refuses as the wrong kind (vLLM-Omni's 503 "No diffusion stage
found", a 400 naming the endpoint's model kind) is re-raised by :func:`wrong_server` as the wrong
server, naming those that could, never as "overloaded".
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from vomni_nb import _advice
from vomni_nb.errors import APIStatusError, ServerManagerError, WrongServerError

if TYPE_CHECKING:
    from vomni_nb.server import Server, ServerManager

__all__ = ["Task", "TASKS", "SUGGESTED_MODELS", "tasks_for", "main_task", "Target", "resolve", "replicas",
           "capable_servers", "wrong_server", "is_wrong_server_answer", "SERVER_ENV", "BASE_URL_ENV"]

Task = Literal["image", "edit", "speech", "chat", "video"]
TASKS: tuple[Task, ...] = ("image", "edit", "speech", "chat", "video")
SERVER_ENV = "VOMNI_SERVER"  # a server name or URL the generating magics and twins use by default
BASE_URL_ENV = "VOMNI_BASE_URL"  # the client's own fallback URL

# What each kind of model does; the first task is its main one.
_IMAGE: tuple[Task, ...] = ("image",)
_IMAGE_AND_EDIT: tuple[Task, ...] = ("image", "edit")
_EDIT: tuple[Task, ...] = ("edit",)
_CHAT: tuple[Task, ...] = ("chat",)
_SPEECH: tuple[Task, ...] = ("speech",)
_VIDEO: tuple[Task, ...] = ("video",)

KNOWN: dict[str, tuple[Task, ...]] = {
    "Tongyi-MAI/Z-Image-Turbo": _IMAGE,
    "Qwen/Qwen-Image": _IMAGE_AND_EDIT,
    "Qwen/Qwen-Image-2512": _IMAGE_AND_EDIT,
    "Qwen/Qwen-Image-Edit": _EDIT,
    "Qwen/Qwen-Image-Edit-2509": _EDIT,
    "Qwen/Qwen-Image-Edit-2511": _EDIT,
    "black-forest-labs/FLUX.1-dev": _IMAGE,
    "stabilityai/stable-diffusion-3.5-medium": _IMAGE,
    "Qwen/Qwen2.5-Omni-7B": _CHAT,
    "Qwen/Qwen2.5-Omni-3B": _CHAT,
    "Qwen/Qwen3-Omni-30B-A3B-Instruct": _CHAT,
    "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice": _SPEECH,
    "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign": _SPEECH,
    "Qwen/Qwen3-TTS-12Hz-1.7B-Base": _SPEECH,
    "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice": _SPEECH,
    "Qwen/Qwen3-TTS-12Hz-0.6B-Base": _SPEECH,
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": _VIDEO,
    "Wan-AI/Wan2.2-I2V-A14B-Diffusers": _VIDEO,
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": _VIDEO,
}
PATTERNS: tuple[tuple[str, tuple[Task, ...]], ...] = (("Qwen/Qwen3-TTS-*", _SPEECH), ("Wan-AI/Wan2.*", _VIDEO))

# What to start when nothing can do a task (each runs on vomni-sim with --sim).
SUGGESTED_MODELS: dict[Task, str] = {
    "image": "Tongyi-MAI/Z-Image-Turbo",
    "edit": "Qwen/Qwen-Image-Edit",
    "speech": "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
    "chat": "Qwen/Qwen2.5-Omni-7B",
    "video": "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
}
_NOUNS: dict[Task, str] = {"image": "make images", "edit": "edit images", "speech": "speak (text to speech)",
                           "chat": "chat", "video": "make videos"}
_KINDS: dict[Task, str] = {"image": "an image model", "edit": "an image-editing model", "speech": "a TTS model",
                           "chat": "an omni (chat) model", "video": "a video model"}


def tasks_for(model: str | None) -> tuple[Task, ...] | None:
    """The tasks ``model`` can do (its main one first), or None when the model is unknown."""
    if not model:
        return None
    if model in KNOWN:
        return KNOWN[model]
    for pattern, tasks in PATTERNS:
        if fnmatch.fnmatchcase(model, pattern):
            return tasks
    return None


def main_task(model: str | None) -> Task | None:
    tasks = tasks_for(model)
    return tasks[0] if tasks else None


def _kind_of(model: str | None) -> str:
    task = main_task(model)
    return _KINDS[task] if task else "a model of unknown kind"


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a request goes: ``server`` (a Server handle, or a URL string) and, for sweeps, every
    healthy replica of its model (``replicas``, ``server`` first). ``model`` is sent in the request
    only when the caller named one (``send_model``); ``name`` is how status lines call the server."""

    server: Any
    name: str
    url: str
    model: str | None
    send_model: str | None = None
    replicas: tuple[Any, ...] = ()

    @property
    def servers(self) -> tuple[Any, ...]:
        return self.replicas or (self.server,)


def _manager(manager: ServerManager | None) -> ServerManager:
    if manager is not None:
        return manager
    from vomni_nb.server import default_manager

    return default_manager()


def _describe(server: Server) -> str:
    return f"{server.name} ({_kind_of(server.model)}, {server.url})"


def capable_servers(task: Task, servers: Iterable[Server]) -> list[Server]:
    """The servers whose model does ``task``, those whose main task it is first."""
    able = [server for server in servers if task in (tasks_for(server.model) or ())]
    return sorted(able, key=lambda server: main_task(server.model) != task)


def _who_can(task: Task, servers: Sequence[Server]) -> str:
    """The advice of a wrong-server error: the servers that can, or what to start."""
    able = capable_servers(task, servers)
    if able:
        return _advice.use_server([s.name for s in able])
    return _advice.start_for_task(SUGGESTED_MODELS[task])


def _refuse(task: Task, name: str, model: str | None, servers: Sequence[Server]) -> WrongServerError:
    who = f"{model} is" if name == model else f"{name} serves {model},"
    return WrongServerError(f"{who} {_kind_of(model)}: it cannot {_NOUNS[task]}. {_who_can(task, servers)}",
                            servers=[s.name for s in capable_servers(task, servers)])


def _target(server: Any, send_model: str | None, replicas: Sequence[Any] = ()) -> Target:
    if isinstance(server, str):
        return Target(server=server, name=server, url=server, model=send_model, send_model=send_model)
    return Target(server=server, name=server.name, url=server.url, model=send_model or server.model,
                  send_model=send_model, replicas=tuple(replicas))


_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d+(/.*)?$")


def _looks_like_url(text: str) -> bool:
    """``http://h:1``, ``h:8091``, ``127.0.0.1:8091/v1``: an address rather than a server's name."""
    return "://" in text or _HOST_PORT.match(text) is not None


def _explicit(task: Task, server: Any, model: str | None, manager: ServerManager, *, spread: bool = False) -> Target:
    """``server`` (a handle, a name the manager knows, or a URL) checked against ``task``; with ``spread``,
    every server of the same model (replicas) comes along."""
    if isinstance(server, str):
        text = server.strip()
        try:
            server = manager.get(text)
        except ServerManagerError:
            if not _looks_like_url(text):
                raise
            return _target(text, model)
    known = tasks_for(model or server.model)
    if known is not None and task not in known:
        raise _refuse(task, server.name, model or server.model, manager.servers)
    same = [s for s in manager.servers if s.model == server.model and s is not server] if spread else []
    return _target(server, model, [server, *same] if same else ())


def resolve(task: Task, *, model: str | None = None, server: Any = None, default_server: str | None = None,
            manager: ServerManager | None = None) -> Target:
    """The target for ``task`` by the rules in the module docstring (no request is sent here)."""
    found = _manager(manager)
    if server is not None:
        return _explicit(task, server, model, found)
    servers = found.servers
    if model is not None:
        serving = [s for s in servers if s.model == model or s.name == model]
        if not serving:
            known = tasks_for(model)
            if known is not None and task not in known:
                raise _refuse(task, model, model, servers)
            running = ", ".join(_describe(s) for s in servers) or "none"
            raise ServerManagerError(f"no server serves {model!r}; running: {running}. {_advice.serve_model(model)}.")
        return _explicit(task, serving[0], None, found, spread=True)
    default_server = default_server or os.environ.get(SERVER_ENV) or None
    if default_server:
        return _explicit(task, default_server, None, found)
    return _by_task(task, found)


def _by_task(task: Task, manager: ServerManager) -> Target:
    servers = manager.servers
    able = capable_servers(task, servers)
    default = manager.default_name
    if able:
        best = [s for s in able if main_task(s.model) == task] or able
        models = list(dict.fromkeys(s.model for s in best))
        chosen = next((s for s in best if s.name == default), None)
        if chosen is None and len(models) > 1:
            raise ServerManagerError(
                f"several servers can {_NOUNS[task]}: {', '.join(_describe(s) for s in best)}; pass --model MODEL or "
                f"--server NAME (model=/server= in Python), or {_advice.PICK_ONE}.")
        chosen = chosen or best[0]
        return _explicit(task, chosen, None, manager, spread=True)
    unknown = [s for s in servers if tasks_for(s.model) is None]
    pick = next((s for s in unknown if s.name == default), None) or (unknown[0] if len(servers) == 1 and unknown
                                                                     else None)
    if pick is not None:
        return _explicit(task, pick, None, manager, spread=True)
    if not servers and os.environ.get(BASE_URL_ENV):
        return _target(os.environ[BASE_URL_ENV], None)
    running = "; running: " + ", ".join(_describe(s) for s in servers) if servers else ""
    raise ServerManagerError(f"no server can {_NOUNS[task]}{running}. {_advice.start_for_task(SUGGESTED_MODELS[task])}")


def replicas(target: Target, *, timeout: float = 2.0) -> list[Any]:
    """The servers of ``target`` that answer ``/health`` with 200 (every replica of its model), in order.

    A server that does not answer is left out (a sweep spreads over the others); when none answers,
    the target's own server is returned, so the request fails with the client's clear error.
    """
    servers = list(target.servers)
    if len(servers) == 1:
        return servers
    from concurrent.futures import ThreadPoolExecutor

    from vomni_nb.server.probe import health_code

    with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
        codes = list(pool.map(lambda s: health_code(s if isinstance(s, str) else s.url, timeout), servers))
    healthy = [server for server, code in zip(servers, codes) if code == 200]
    return healthy or [target.server]


_WRONG_KIND_PHRASES = ("no diffusion stage", "does not support chat completions", "only supported for dedicated tts",
                       "generates video", "answers images only", "cannot edit", "did not produce audio")


def is_wrong_server_answer(error: BaseException) -> bool:
    """Whether a server's error says its model cannot do this kind of request at all."""
    if not isinstance(error, APIStatusError) or error.status_code not in (400, 404, 503):
        return False
    text = str(error).lower()
    if error.status_code == 404:
        return "has no route" in text
    return any(phrase in text for phrase in _WRONG_KIND_PHRASES)


def wrong_server(task: Task, target: Target, error: APIStatusError,
                 manager: ServerManager | None = None) -> WrongServerError:
    """``error`` (the server refused the kind of request) as the wrong server, naming those that could."""
    servers = _manager(manager).servers
    said = str(error).split(": ", 1)[-1].split(". ")[0]
    return WrongServerError(f"{target.name} cannot {_NOUNS[task]}: it answered {error.status_code} \"{said}\". "
                            f"{_who_can(task, servers)}", servers=[s.name for s in capable_servers(task, servers)])
