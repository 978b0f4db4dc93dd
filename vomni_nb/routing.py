"""Which server a generation goes to: the routing rules, over the client's capability table.

What a model is for comes from :mod:`vomni_nb.protocol.capabilities` (the client's own table: the
simulator keeps its family table in ``sim/families.py``, and the client never imports the simulator).
Any other id (an attached server with a ``--served-model-name``, a model we do not know yet) is
*unknown*: it may do anything, so it is used only where nothing better is known.

Routing rules (``resolve(task, model=..., server=...)``), checked in this order:

1. ``server`` given (a ``Server`` handle, a manager name, model id, port, or a URL): that server alone.
   A URL the manager does not know is used as it is. When its model is known and its server never
   answers ``task`` (``capabilities.answers``), the request is refused before anything is sent
   (:class:`~vomni_nb.errors.WrongServerError`, naming the servers that could). ``model`` is then sent.
2. ``model`` given: every server of the manager that serves it (several are replicas: a sweep spreads
   over them); none is an error that says what to run (``%omni_server start MODEL --sim``).
3. Neither: the ``default_server`` setting when set (``%config VomniMagics.default_server``, else
   ``$VOMNI_SERVER``), as in rule 1.
4. Else the manager's servers whose model is for ``task`` (``capabilities.tasks_for``), the most
   specialised first (an edit model, which also makes images, is not picked for text-to-image while
   an image model runs); one model among them, or the default server (``%omni_server use``), wins;
   several models is an error naming them.
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
import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from vomni_nb import _advice
from vomni_nb.errors import APIStatusError, ServerManagerError, WrongServerError
from vomni_nb.protocol import capabilities
from vomni_nb.protocol.capabilities import TASKS, Task

if TYPE_CHECKING:
    from vomni_nb.server import Server, ServerManager

__all__ = ["Task", "TASKS", "SUGGESTED_MODELS", "tasks_for", "main_task", "Target", "resolve", "replicas",
           "capable_servers", "wrong_server", "is_wrong_server_answer", "SERVER_ENV", "BASE_URL_ENV"]

SERVER_ENV = "VOMNI_SERVER"  # a server name or URL the generating magics and twins use by default
BASE_URL_ENV = "VOMNI_BASE_URL"  # the client's own fallback URL

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


def tasks_for(model: str | None) -> frozenset[str] | None:
    """The tasks ``model`` is for (route these to it), or None when the model is unknown."""
    return capabilities.tasks_for(model)


def main_task(model: str | None) -> str | None:
    """The one task ``model`` is most for: its only one, or (an edit model) the rarer one, ``edit``."""
    tasks = tasks_for(model)
    if not tasks:
        return None
    return "edit" if "edit" in tasks else sorted(tasks)[0]


def _kind_of(model: str | None) -> str:
    found = capabilities.capability(model)
    return found.noun if found is not None else "a model of unknown kind"


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
    """The servers whose model is for ``task``, the most specialised first (an image model before an
    edit model, which also makes images)."""
    able = [server for server in servers if task in (tasks_for(server.model) or ())]
    return sorted(able, key=lambda server: len(tasks_for(server.model) or ()))


def _who_can(task: Task, servers: Sequence[Server]) -> str:
    """The advice of a wrong-server error: the servers that can, or what to start."""
    able = capable_servers(task, servers)
    if able:
        return _advice.use_server([s.name for s in able])
    return _advice.start_for_task(SUGGESTED_MODELS[task])


def _wrong(cause: str, task: Task, model: str | None, servers: Sequence[Server]) -> WrongServerError:
    advice = _who_can(task, servers)
    return WrongServerError(f"{cause}. {advice}", model=model, task=task, advice=advice,
                            servers=[s.name for s in capable_servers(task, servers)])


def _refuse(task: Task, name: str, model: str | None, servers: Sequence[Server]) -> WrongServerError:
    who = f"{model} is" if name == model else f"{name} serves {model},"
    return _wrong(f"{who} {_kind_of(model)}: it cannot {_NOUNS[task]}", task, model, servers)


def _manager_error(cause: str, advice: str) -> ServerManagerError:
    """A ServerManagerError whose advice IPython shows on a line of its own."""
    error = ServerManagerError(f"{cause}. {advice}")
    error.advice = advice
    return error


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
    if capabilities.answers(model or server.model, task) is False:
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
            if capabilities.answers(model, task) is False:
                raise _refuse(task, model, model, servers)
            running = ", ".join(_describe(s) for s in servers) or "none"
            raise _manager_error(f"no server serves {model!r}; running: {running}",
                                 _advice.serve_model(model)[:1].upper() + _advice.serve_model(model)[1:] + ".")
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
        fewest = len(tasks_for(able[0].model) or ())
        best = [s for s in able if len(tasks_for(s.model) or ()) == fewest]
        models = list(dict.fromkeys(s.model for s in best))
        chosen = next((s for s in best if s.name == default), None)
        if chosen is None and len(models) > 1:
            raise _manager_error(f"several servers can {_NOUNS[task]}: {', '.join(_describe(s) for s in best)}",
                                 f"Pass --model MODEL or --server NAME (model=/server= in Python), or {_advice.PICK_ONE}.")
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
    raise _manager_error(f"no server can {_NOUNS[task]}{running}", _advice.start_for_task(SUGGESTED_MODELS[task]))


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
    if isinstance(error, WrongServerError):
        return True
    if not isinstance(error, APIStatusError) or error.status_code not in (400, 404, 503):
        return False
    text = str(error).lower()
    if error.status_code == 404:
        return "has no route" in text
    return any(phrase in text for phrase in _WRONG_KIND_PHRASES)


def wrong_server(task: Task, target: Target, error: Exception,
                 manager: ServerManager | None = None) -> WrongServerError:
    """``error`` (the server, or the client knowing its model, refused the kind of request) as the wrong
    server, naming the servers of this kernel that could."""
    servers = _manager(manager).servers
    answer = error if isinstance(error, APIStatusError) else error.__cause__
    if isinstance(answer, APIStatusError):  # the server said so
        said = str(answer).split(": ", 1)[-1].split(". ")[0]
        cause = f"{target.name} cannot {_NOUNS[task]}: it answered {answer.status_code} \"{said}\""
    else:  # the client knew the model and refused before sending
        said = str(getattr(error, "message", "") or error).split("; send ")[0].split(". ")[0]
        cause = f"{target.name} cannot {_NOUNS[task]}: {said}"
    return _wrong(cause, task, target.model, servers)
