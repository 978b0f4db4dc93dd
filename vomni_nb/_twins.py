"""What every Python twin shares: the plain functions behind the magics (``vomni_nb.image``, ...).

A twin is a keyword-only function exported from ``vomni_nb`` that works in a script, a test or a cell,
with no IPython. Its shape, for every generating task::

    def speak(text, *, model=None, server=None, voice=None, ..., save=None, log=True, status=None):
        text = check_prompt(text)                              # 1. every check, before anything is sent
        target = resolve_target("speech", model=model, server=server)   # 2. routing (vomni_nb.routing)
        result = call("speech", target, lambda client: client.speak(text, ...),   # 3. one request,
                      what=f"speech ({voice})", status=status, log=log)            #    with a live wait line
        save_result(result, save)                              # 4. saved before anyone displays it
        return result

Rules:

1. Bad input raises :class:`~vomni_nb.errors.InvalidRequestError` before any request (routing's
   health checks included); a magic turns it into a ``UsageError``.
2. Requests run on a private event loop in a background thread, through ``AsyncOmniClient``
   (:func:`run_waiting`); the calling thread waits, updates the live status line, and on Ctrl-C
   cancels the work (the connection closes, so the server aborts) and raises
   :class:`~vomni_nb.errors.Interrupted` (a KeyboardInterrupt; ``.partial`` holds what finished).
3. A twin never displays its result: it returns it. Its wait line (``status``): ``None`` shows one in a
   Jupyter kernel (after a second: a quick answer shows none) and, when it showed, ends it as a one-line
   record (``✓ an answer on omni in 3.2 s``; ``✗ ... did not finish`` when it failed, the error below
   it), never as an empty output a saved notebook would keep (:func:`end_line`); ``False`` shows none; a
   :class:`~vomni_nb.display.WaitLine` from the caller (a magic) is left for the caller to end, with the
   result in its place.
4. A server that refuses the kind of request is reported as the wrong server
   (:func:`vomni_nb.routing.wrong_server`), never as overloaded.
5. Every generation is recorded in the history by the client itself (``_recording``). A twin's ``log``
   (:data:`Log`) becomes its client's ``history=`` (:func:`client_for`): True the default store,
   False nothing recorded, a HistoryStore or a path that store (``%config VomniMagics.history_path``).
6. The one exception to rule 3: a streamed answer (``speak(stream=True)``, ``chat(stream=True)``) is
   shown as it arrives (:func:`call_stream` hands its events to a view of :mod:`vomni_nb._live` on the
   calling thread), and that view leaves the static result in place and ends the wait line itself, so
   a caller that ends the line again changes nothing. Such a result is already shown: assign it.
7. A result's recipe goes back into the twin that made it: ``vomni_nb.image(**result.recipe)``. A recipe
   names the client method's arguments (:attr:`vomni_nb.provenance.Provenance.recipe`), so where a twin
   says it the magics' way (``format``, ``frames``) it also takes the client's name (``output_format``,
   ``response_format``, ``num_frames``); :func:`either_spelling` refuses the two with different values,
   as the client does for ``steps`` / ``num_inference_steps``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Union

from vomni_nb import _advice
from vomni_nb.errors import APIStatusError, Interrupted, InvalidRequestError, WrongServerError
from vomni_nb.protocol.validate import one_setting
from vomni_nb.routing import Target, Task, is_wrong_server_answer, resolve, tasks_for, wrong_server

if TYPE_CHECKING:
    from vomni_nb._history import HistoryStore
    from vomni_nb._recording import HistorySetting
    from vomni_nb.async_client import AsyncOmniClient
    from vomni_nb.display import WaitLine

__all__ = ["Status", "Log", "history_setting", "run_waiting", "resolve_target", "client_for", "call", "call_stream",
           "StreamView",
           "save_result", "wait_line", "end_line", "either_spelling", "CANCEL_GRACE_S"]

T = TypeVar("T")
Status = Union["WaitLine", bool, None]
Log = Union[bool, "HistoryStore", str, "os.PathLike[str]"]  # where a twin's generation is recorded (rule 5)
CANCEL_GRACE_S = 2.0  # how long an interrupted wait lets its requests close their connections


def run_waiting(work: Callable[[], Coroutine[Any, Any, T]], *, tick: Callable[[float], None] | None = None,
                interval: float = 0.1) -> T:
    """Run ``work()`` on a private event loop in a daemon thread; call ``tick(elapsed)`` every ``interval``
    seconds from this thread while waiting, and return its result (or raise its error).

    A Jupyter kernel already runs a loop in the main thread, so this never uses ``asyncio.run`` there.
    An exception in this thread (Ctrl-C) cancels the work and waits briefly for its clean-up (the
    connections close, so the server aborts the requests) before it propagates.
    """
    finished = threading.Event()

    async def tracked() -> T:
        try:
            return await work()
        finally:
            finished.set()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vomni-twin-loop", daemon=True)
    thread.start()
    future = asyncio.run_coroutine_threadsafe(tracked(), loop)
    started = time.monotonic()
    try:
        while True:
            try:
                return future.result(timeout=interval)
            except concurrent.futures.TimeoutError:
                if tick is not None:
                    tick(time.monotonic() - started)
    except BaseException:
        future.cancel()
        finished.wait(CANCEL_GRACE_S)
        raise
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CANCEL_GRACE_S)
        if not thread.is_alive():
            loop.close()


def resolve_target(task: Task, *, model: str | None = None, server: Any = None,
                   default_server: str | None = None) -> Target:
    """Where ``task`` goes (:func:`vomni_nb.routing.resolve` with the kernel's default manager)."""
    return resolve(task, model=model, server=server, default_server=default_server)


def history_setting(log: Log) -> HistorySetting:
    """A twin's ``log`` as a client's ``history=`` (rule 5); a path opens that store once per kernel."""
    if log is True:
        return None
    if log is False:
        return False
    from vomni_nb._history import HistoryStore
    from vomni_nb._history.store import default_store

    if isinstance(log, HistoryStore):
        return log
    if not isinstance(log, (str, os.PathLike)):
        raise InvalidRequestError(f"log takes True, False, a HistoryStore or a path; got {log!r}.")
    store = default_store(log)  # None when the history is turned off everywhere
    return False if store is None else store


def client_for(server: Any, target: Target, timeout: float | None = None, *, log: Log = True) -> AsyncOmniClient:
    """An async client for one server of ``target`` (made inside the running loop: its connections belong
    to it). The model is sent only when the caller named one; ``log`` says where it records (rule 5)."""
    from vomni_nb.async_client import AsyncOmniClient

    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    if log is not True:
        options["history"] = history_setting(log)
    return AsyncOmniClient(server, model=target.send_model, **options)


def wait_line(status: Status) -> tuple[WaitLine | None, bool]:
    """(the line to update, whether this twin owns it and must end it) for a twin's ``status`` argument."""
    if status is False:
        return None, False
    if status is None or status is True:
        from vomni_nb.display import WaitLine, in_kernel

        return (WaitLine(), True) if (status is True or in_kernel()) else (None, False)
    return status, False


def end_line(line: WaitLine, what: str, where: str, elapsed: float, *, ok: bool) -> None:
    """Rule 3: end a twin's own wait line. One that showed becomes a static record of the wait (an update
    cannot remove an output, and an emptied one stays in the saved notebook as an empty output); one that
    never showed stays unshown."""
    if not line.shown:
        line.clear()
        return
    import html

    # A failure's time is left to its error, which says the one that counts (the timeout given, for a video).
    mark, color, end = ("✓", "#2e7d32", f"in {elapsed:.1f} s") if ok else ("✗", "#c62828", "did not finish")
    text = f"{mark} {what} on {where} {end}"
    body = (f"<span style='color:{color}'>{mark}</span> {html.escape(what)} on <b>{html.escape(where)}</b> "
            f"{html.escape(end)}")
    line.finish(text, f"<div style='font-family:monospace;padding:2px 0'>{body}</div>")


def _status_text(what: str, target: Target, elapsed: float, detail: str = "") -> tuple[str, str]:
    import html

    more = f" ({detail})" if detail else ""
    text = f"◔ {what} on {target.name} … {elapsed:.1f} s{more}"
    body = (f"<span style='color:#b58900'>◔</span> {html.escape(what)} on <b>{html.escape(target.name)}</b> "
            f"… {elapsed:.1f} s{html.escape(more)}")
    return text, f"<div style='font-family:monospace;padding:2px 0'>{body}</div>"


def call(task: Task, target: Target, request: Callable[[AsyncOmniClient], Awaitable[T]], *, what: str,
         status: Status = None, timeout: float | None = None, log: Log = True,
         detail: Callable[[], str] | None = None) -> T:
    """One request to ``target``'s server, waiting with a live status line (rules 2-5 of the module).
    ``detail()``, when given, adds what is known of the work so far to the line (a video job's state)."""
    line, owned = wait_line(status)

    async def work() -> T:
        async with client_for(target.server, target, timeout, log=log) as client:
            return await request(client)

    def tick(elapsed: float) -> None:
        if line is not None:
            line.update(*_status_text(what, target, elapsed, detail() if detail is not None else ""))

    started, ok = time.monotonic(), False
    try:
        with _told_apart(task, target):
            result = run_waiting(work, tick=tick)
        ok = True
        return result
    finally:
        if owned and line is not None:
            end_line(line, what, target.name, time.monotonic() - started, ok=ok)


@contextlib.contextmanager
def _told_apart(task: Task, target: Target) -> Iterator[None]:
    """Rule 4, and Ctrl-C as :class:`~vomni_nb.errors.Interrupted` saying what the server did."""
    try:
        yield
    except WrongServerError as exc:  # the client knew the model, or the server said so: name who could
        raise wrong_server(task, target, exc) from exc
    except APIStatusError as exc:
        if tasks_for(target.model) is None and is_wrong_server_answer(exc):
            raise wrong_server(task, target, exc) from exc
        raise
    except KeyboardInterrupt as exc:
        if isinstance(exc, Interrupted):
            raise
        raise Interrupted(_advice.interrupted(), url=target.url) from exc


class StreamView(Protocol):
    """What shows a streamed answer as it arrives; called on the calling thread (the cell's), never the loop's."""

    def opened(self) -> None:
        """The server began to answer (the wait for the first byte is over)."""

    def event(self, event: Any, text: str) -> None:
        """One event of the stream (TextDelta, AudioDelta, ...) and the whole text so far."""


class _Opened:
    """The queue's marker for "the stream is open"."""


def call_stream(task: Task, target: Target, open_stream: Callable[[AsyncOmniClient], Awaitable[Any]], *, what: str,
                view: StreamView | None, line: WaitLine | None, timeout: float | None = None, log: Log = True,
                interval: float = 0.05) -> Any:
    """One streamed request to ``target``'s server; returns the stream's final result.

    ``open_stream(client)`` opens an async chat or speech stream (``client.chat_stream(...)``); it is read on
    the private loop (rule 2), and each event is handed to ``view`` on this thread, at most ``interval``
    seconds after it arrived (a display updated from the loop's thread would land in the wrong cell). Until
    the stream opens, ``line`` shows the usual wait status. On Ctrl-C the stream is cancelled, which closes
    its connection, so the server aborts the generation; events that arrived before are still handed over.
    ``line`` is not ended here: the twin ends it, with the result or what arrived.
    """
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()

    async def work() -> Any:
        async with client_for(target.server, target, timeout, log=log) as client:
            stream = await open_stream(client)
            events.put(_Opened)
            try:  # whatever ends the reading (the end, an error, cancellation), the connection closes
                async for event in stream:
                    events.put((event, stream.text))
                return await stream.finish()
            finally:
                await stream.aclose()

    opened = False

    def drain() -> None:
        nonlocal opened
        while True:
            try:
                item = events.get_nowait()
            except queue.Empty:
                return
            if item is _Opened:
                opened = True
                if view is not None:
                    view.opened()
            elif view is not None:
                view.event(*item)

    def tick(elapsed: float) -> None:
        drain()
        if line is not None and not opened:
            line.update(*_status_text(what, target, elapsed))

    try:
        with _told_apart(task, target):
            return run_waiting(work, tick=tick, interval=interval)
    finally:
        drain()


def either_spelling(name: str, value: Any, client_name: str, client_value: Any) -> Any:
    """One setting a twin takes under its own name and the client's (rule 7); the check is
    :func:`~vomni_nb.protocol.validate.one_setting`'s, the client's own for its wire spellings."""
    return one_setting(name, value, client_name, client_value,
                       why=f"the same setting: {client_name} is the client's name for it, as in result.recipe")


def save_result(result: Any, save: Any) -> list[Path]:
    """Write ``result`` into the folder ``save`` (never overwriting; nothing when None); the paths written."""
    if save is None:
        return []
    saved = result.save(save) if hasattr(result, "images") else [result.save(Path(save))]
    return list(saved) if isinstance(saved, list) else [saved]
