"""``Studio(...)``: iterate on an image prompt with Generate and Cancel while the kernel stays free.

Rule 1: a Generate is a task awaiting ``AsyncOmniClient.image`` on the event loop of the kernel thread that
        asked: the comm callback returns at once, so Cancel clicks and other cells keep running (a blocking
        call would hold every button: ipywidgets#3468). That loop is the main shell's, or the subshell's
        where JupyterLab sends widget messages on a kernel subshell (ipykernel 7), so each task makes and
        closes its own client (an httpx client belongs to one loop). Cancel cancels the task from any thread
        (``call_soon_threadsafe``), which closes the request, so the server aborts the generation.
Rule 2: ``count`` images are made one after another with consecutive seeds, each recorded in history
        (``_studio_keep.record_result``) and then shown with its seed and time; a Cancel keeps the ones made.
Rule 3: the form lives in the widget's traits (or, without a widget, in ``_values``); the strip of past
        results restores a form in the page itself, without a round trip to a kernel that may be busy.
Rule 4: outputs follow ``_live``: the widget where a person watches, a static summary with previews
        elsewhere and after ``close()``; a pinned result is the result's own static bundle in a new output.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vomni_nb.errors import HistoryError, InvalidRequestError, VomniError, redact
from vomni_nb.widgets._live import LiveOutputs, close_widget, widget_bundle
from vomni_nb.widgets._speech import _bundle_of
from vomni_nb.widgets._studio_keep import (PREVIEW_SIDE, jpeg_preview, load_strip, one_image, record_result,
                                           result_item, strip_item, studio_bundle)
from vomni_nb.widgets._studio_params import SIZES, StudioParams, check_params, image_kwargs, makes_images, seeds_for

if TYPE_CHECKING:
    from vomni_nb._history import HistoryStore
    from vomni_nb.async_client import AsyncOmniClient
    from vomni_nb.results import ImageResult
    from vomni_nb.server import Server, ServerManager

__all__ = ["Studio"]

SHOWN_RESULTS = 12  # results the page holds (newest first); every one stays in history and in the kernel
STRIP_SIZE = 24
_FORM = ("prompt", "negative", "size", "steps", "guidance", "seed", "seed_locked", "count", "server")


def _widget_class() -> Any:
    import anywidget
    import traitlets as t

    class StudioWidget(anywidget.AnyWidget):  # type: ignore[misc]
        """The browser side is ``studio.js`` (its look: ``studio.css``). Images travel as binary buffers inside
        ``results``/``strip``."""

        _esm = Path(__file__).with_name("studio.js")
        _css = Path(__file__).with_name("studio.css")
        prompt, negative, size = t.Unicode("").tag(sync=True), t.Unicode("").tag(sync=True), t.Unicode("").tag(sync=True)
        steps = t.Int(None, allow_none=True).tag(sync=True)
        guidance = t.Float(None, allow_none=True).tag(sync=True)
        seed = t.Unicode("").tag(sync=True)  # text: a JS number cannot hold every int64 seed
        seed_locked = t.Bool(False).tag(sync=True)
        count = t.Int(1).tag(sync=True)
        server = t.Unicode("").tag(sync=True)
        servers: Any = t.List().tag(sync=True)
        sizes: Any = t.List().tag(sync=True)
        status = t.Dict().tag(sync=True)
        results: Any = t.List().tag(sync=True)
        strip: Any = t.List().tag(sync=True)
        history_note = t.Unicode("").tag(sync=True)

    return StudioWidget


class Studio:
    """A prompt-iteration widget for an image server: prompt, negative prompt, size, steps, guidance, seed
    (random, or locked), count, a server picker, Generate and Cancel, the results with their seed and
    time (Pin shows one as a static output, Save writes its file) and a strip of past results from history
    (a click restores their parameters).

    ``server``: a Server handle, a name the manager knows, or a URL (default: the manager's image servers).
    ``store``: the history store (default: the kernel's, none with history off; ``False``: record nothing,
    as ``%config VomniMagics.history = False`` asks of ``%omni_studio``). ``save_dir``: where Save
    writes. ``live``: True/False forces the widget or the static summary (None guesses from the front end).
    From code: ``await studio.generate(prompt=...)`` returns the images; ``studio.cancel()``; ``studio.pin()``.
    """

    def __init__(self, prompt: str = "", *, negative: str = "", size: str = "1024x1024", steps: int | None = None,
                 guidance: float | None = None, seed: int | None = None, count: int = 1,
                 server: Server | str | None = None, manager: ServerManager | None = None,
                 store: HistoryStore | Literal[False] | None = None, save_dir: str | Path = "outputs",
                 live: bool | None = None) -> None:
        checked = check_params({"prompt": prompt or "-", "negative": negative, "size": size, "steps": steps,
                                "guidance": guidance, "seed": seed, "count": count})
        if manager is None:
            from vomni_nb.server import default_manager

            manager = default_manager()
        if store is None:
            from vomni_nb._history import default_store

            store = default_store()
        self.manager = manager
        self.store: HistoryStore | None = None if store is False else store
        self.save_dir = Path(save_dir)
        self._given = self._key_of(server) if server is not None else ""
        self._values: dict[str, Any] = {
            "prompt": prompt, "negative": checked.negative, "size": checked.size, "steps": checked.steps,
            "guidance": checked.guidance, "seed": "" if seed is None else str(seed), "seed_locked": seed is not None,
            "count": checked.count, "server": self._given,
        }
        self._outputs = LiveOutputs("vomni-studio", live)
        self._widget: Any = None
        self._task: asyncio.Task[list[ImageResult]] | None = None
        self._starting = threading.Lock()  # a click on the main shell and one on a subshell may race
        self._made: list[tuple[str, ImageResult, int | None]] = []
        self._small: dict[str, bytes] = {}  # previews of the static summary, made once per image
        self._keys = itertools.count(1)
        self._status: dict[str, Any] = {"state": "idle", "text": "", "done": 0, "total": 0, "token": 0}
        self._note = "" if self.store is not None else "history is off: Pin or Save an image to keep it"
        self.closed = False
        self._values["server"] = self._values["server"] or self._default_server()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self._status["state"]
        return f"Studio({state}, server={self._form()['server'] or None!r}, {len(self._made)} image(s))"

    # ---- the form -----------------------------------------------------------------------------

    def _form(self) -> dict[str, Any]:
        if self._widget is None:
            return dict(self._values)
        return {name: getattr(self._widget, name) for name in _FORM}

    def _set_form(self, **values: Any) -> None:
        self._values.update(values)
        if self._widget is not None:
            with self._widget.hold_sync():
                for name, value in values.items():
                    setattr(self._widget, name, value)

    @property
    def params(self) -> StudioParams:
        """The form as it is now, checked (InvalidRequestError names a bad field)."""
        return check_params(self._form())

    # ---- servers ------------------------------------------------------------------------------

    def _key_of(self, server: Server | str) -> str:
        if not isinstance(server, str):
            return str(server.url)
        if server.startswith(("http://", "https://")):
            return server.rstrip("/")
        return str(self.manager.get(server).url)  # raises with the names it knows

    def _server_options(self) -> list[dict[str, str]]:
        options = [{"key": s.url, "label": s.name, "model": s.model, "url": s.url}
                   for s in self.manager.servers if s.url and (makes_images(s.model) or s.url == self._given)]
        if self._given and not any(option["key"] == self._given for option in options):
            options.append({"key": self._given, "label": self._given, "model": "", "url": self._given})
        return options

    def _default_server(self) -> str:
        options = self._server_options()
        named = [o["key"] for o in options if o["label"] == self.manager.default_name]
        return (named or [o["key"] for o in options] or [""])[0]

    def _target(self, key: str) -> Server | str:
        for server in self.manager.servers:
            if server.url == key:
                return server
        if key.startswith(("http://", "https://")):
            return key
        from vomni_nb import _advice

        raise InvalidRequestError(f"Pick an image server first (none is running: {_advice.START_ONE}).")

    # ---- generating ---------------------------------------------------------------------------

    def generate(self, **form: Any) -> asyncio.Task[list[ImageResult]]:
        """Start a Generate with the form (``prompt=``, ``seed=``... change it first); returns its task.

        ``await studio.generate(prompt="a lighthouse")`` in a cell waits for the images; without ``await``
        it runs in the background like the button. Needs the kernel's event loop (a notebook cell).
        """
        unknown = set(form) - set(_FORM)
        if unknown:
            raise InvalidRequestError(f"Studio.generate takes {', '.join(_FORM)}; not {', '.join(sorted(unknown))}.")
        if "seed" in form:
            form = {**form, "seed": "" if form["seed"] is None else str(form["seed"])}
            form.setdefault("seed_locked", form["seed"] != "")
        if "server" in form:
            form["server"] = self._key_of(form["server"])
        self._set_form(**form)
        return self._start()

    def _start(self) -> asyncio.Task[list[ImageResult]]:
        with self._starting:
            if self.closed:
                raise InvalidRequestError("This Studio is closed; open a new one with Studio().")
            if self._task is not None and not self._task.done():
                raise InvalidRequestError("The Studio is already generating: Cancel it first, or wait.")
            params = self.params
            key = self._form()["server"] or self._default_server()
            self._target(key)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise InvalidRequestError("Studio.generate runs on the kernel's event loop: call it in a notebook "
                                          "cell (await it there to wait for the images).") from None
            seeds = seeds_for(params)
            self._set_form(seed=str(seeds[0]), server=key)
            self._task = loop.create_task(self._run(params, key, seeds))
            self._task.add_done_callback(_retrieve)
            return self._task

    async def _run(self, params: StudioParams, key: str, seeds: list[int]) -> list[ImageResult]:
        from vomni_nb.async_client import AsyncOmniClient

        made: list[ImageResult] = []
        total, started = len(seeds), time.monotonic()
        self._set_status("running", f"generating {_count(total)}…", 0, total)
        try:
            async with AsyncOmniClient(self._target(key), history=self.store if self.store is not None else False) as client:
                await self._make(client, params, seeds, made)
        except asyncio.CancelledError:
            self._set_status("cancelled", f"cancelled after {time.monotonic() - started:.1f} s"
                             f" ({len(made)} of {total} made)", len(made), total)
            raise
        except Exception as exc:  # the server's message (or what failed) goes to the page; the task holds it too
            self._set_status("error", redact(str(exc)) or type(exc).__name__, len(made), total)
            raise
        self._set_status("done", f"{_count(total)} in {time.monotonic() - started:.1f} s", total, total)
        return made

    async def _make(self, client: AsyncOmniClient, params: StudioParams, seeds: list[int],
                    made: list[ImageResult]) -> None:
        for seed in seeds:
            result = one_image(await client.image(**image_kwargs(params, seed)))
            job = asyncio.get_running_loop().run_in_executor(None, self._keep, result)
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                await job  # the image exists: finish keeping it, then stop
                made.append(result)
                raise
            made.append(result)
            self._set_status("running", f"{len(made)} of {len(seeds)} done…", len(made), len(seeds))

    def _keep(self, result: ImageResult) -> None:
        """Record, then show (Rule 2). Runs on a worker thread: recording writes files and SQLite."""
        try:
            entry_id = record_result(self.store, result)
        except HistoryError as exc:  # the image is still shown; the message says what to do
            entry_id, self._note = None, f"not recorded in history: {exc}"
        key = f"r{next(self._keys)}"
        self._made.append((key, result, entry_id))
        widget = self._widget  # close() may drop it meanwhile: this thread keeps its own reference
        if widget is not None:
            preview = jpeg_preview(result.data, PREVIEW_SIDE)
            item = result_item(key, result, entry_id, preview)
            with widget.hold_sync():
                widget.results = [item, *widget.results][:SHOWN_RESULTS]
                if entry_id is not None:
                    thumb = jpeg_preview(preview, 112)
                    widget.strip = [strip_item(entry_id, result.provenance.to_record(), thumb), *widget.strip][:STRIP_SIZE]
                widget.history_note = self._note
        else:
            self._small[key] = jpeg_preview(result.data, 160)
            self._outputs.update(self._static())

    def _set_status(self, state: str, text: str, done: int, total: int) -> None:
        self._status = {"state": state, "text": text, "done": done, "total": total,
                        "token": self._status["token"] + 1}
        if self._widget is not None:
            self._widget.status = self._status

    @property
    def status(self) -> str:
        """``idle``, ``running``, ``done``, ``cancelled`` or ``error``, and what it says: ``"done: 2 images in 3.1 s"``."""
        return f"{self._status['state']}: {self._status['text']}" if self._status["text"] else self._status["state"]

    def cancel(self) -> bool:
        """Cancel the running Generate (its request is closed, so the server aborts it); False when none runs.

        Safe from any thread: the task may run on another thread's loop (Rule 1)."""
        task = self._task
        if task is None or task.done():
            return False
        task.get_loop().call_soon_threadsafe(task.cancel)
        return True

    # ---- results ------------------------------------------------------------------------------

    @property
    def results(self) -> tuple[ImageResult, ...]:
        """Every image this Studio made, oldest first."""
        return tuple(result for _, result, _ in self._made)

    def _find(self, which: int | str | ImageResult) -> tuple[ImageResult, int | None]:
        if isinstance(which, int):
            try:
                _, result, entry_id = self._made[which]
            except IndexError:
                raise InvalidRequestError(f"No result {which}: this Studio has made {len(self._made)}.") from None
            return result, entry_id
        for key, result, entry_id in self._made:
            if which is result or which == key:
                return result, entry_id
        raise InvalidRequestError(f"No result {which!r} in this Studio.")

    def pin(self, which: int | str | ImageResult = -1) -> None:
        """Show a result as a static output (its own bundle): below the Studio for the Pin button, in the
        running cell from code. ``which``: an index into ``results`` (default the newest) or the result."""
        result, entry_id = self._find(which)
        data, metadata = _bundle_of(result)
        if entry_id is not None and isinstance(metadata.get("vomni_nb"), dict):
            metadata["vomni_nb"] = {**metadata["vomni_nb"], "history_id": entry_id}
        self._outputs.display_below(data, metadata)

    def save(self, which: int | str | ImageResult = -1, directory: str | Path | None = None) -> Path:
        """Write a result's file into ``directory`` (default ``save_dir``), never overwriting; returns the path."""
        result, _ = self._find(which)
        target = Path(directory) if directory is not None else self.save_dir
        target.mkdir(parents=True, exist_ok=True)
        return result.save(target)

    # ---- display ------------------------------------------------------------------------------

    def _static(self, closed: bool = False) -> dict[str, str]:
        server = self._form()["server"]
        note = self._note or ("" if closed else "no widget here: `await studio.generate(prompt=...)` makes images")
        for key, result, _ in self._made[-8:]:
            if key not in self._small:
                self._small[key] = jpeg_preview(result.data, 160)
        shown = [(r, e, self._small[k]) for k, r, e in self._made[-8:]]
        return studio_bundle(server, shown, len(self._made), note=note, closed=closed)

    def _ipython_display_(self) -> None:
        if not self.closed and self._outputs.mode() == "widget" and self._ensure_widget():
            self._outputs.show(widget_bundle(self._widget.model_id, self._static()))
        else:
            self._outputs.show(self._static(closed=self.closed))

    def _ensure_widget(self) -> bool:
        if self._widget is not None:
            return True
        try:
            widget_class = _widget_class()
        except ImportError:  # anywidget missing from a hand-made environment: the static summary still works
            return False
        sizes = [list(pair) for pair in SIZES]
        if not any(value == self._values["size"] for value, _ in SIZES):
            sizes.insert(0, [self._values["size"], self._values["size"].replace("x", " × ")])
        self._widget = widget_class(**self._values, servers=self._server_options(), sizes=sizes,
                                    status=self._status, history_note=self._note)
        self._widget.on_msg(self._on_message)
        threading.Thread(target=self._load_strip, name="vomni-studio-strip", daemon=True).start()
        return True

    def _load_strip(self) -> None:
        try:
            items = load_strip(self.store, STRIP_SIZE)
        except (HistoryError, OSError) as exc:
            items, self._note = [], f"history could not be read: {exc}"
        widget = self._widget
        if widget is not None:
            known = {item["id"] for item in widget.strip}
            widget.strip = [*widget.strip, *(item for item in items if item["id"] not in known)][:STRIP_SIZE]
            widget.history_note = self._note

    def _on_message(self, widget: Any, content: Any, buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) and self._widget is not None else None
        try:
            if kind == "generate":
                self._start()
            elif kind == "cancel":
                self.cancel()
            elif kind == "servers":
                self._widget.servers = self._server_options()
            elif kind == "pin":
                self.pin(str(content.get("key")))
            elif kind == "save":
                path = self.save(str(content.get("key")))
                self._widget.history_note = f"saved {path}"
        except (VomniError, OSError) as exc:
            self._set_status("error", redact(str(exc)), 0, 0)

    def close(self) -> None:
        """Cancel a running Generate and leave the static summary in place of the widget."""
        if self.closed:
            return
        self.cancel()
        self.closed = True
        self._outputs.update(self._static(closed=True))
        if self._widget is not None:
            close_widget(self._widget)
            self._widget = None


def _count(n: int) -> str:
    return f"{n} image{'s' * (n != 1)}"


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark the task's outcome as seen: the widget shows it, and asyncio would log it again."""
    if not task.cancelled():
        task.exception()
