"""Output helpers: a live status line (one display handle, updated in place, throttled) that ends as
a static summary, and the wait line of a generation, which is replaced by its result. Every bundle has
``text/plain`` and ``text/html``, so a saved notebook, nbconvert and GitHub show the final state.
IPython is imported only when something is displayed.
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from vomni_nb import _advice

if TYPE_CHECKING:
    from vomni_nb.errors import ServerManagerError
    from vomni_nb.server.handle import Server

__all__ = ["LiveLine", "StartStatusLine", "WaitLine", "StaticOutput", "in_kernel", "bundle", "status_table", "show",
           "show_stream", "ashow_stream"]

Bundle = dict[str, str]
Sink = Callable[[Bundle, bool], None]  # (bundle, first) -> shows or updates the one output


def bundle(text: str, html_text: str | None = None) -> Bundle:
    """A display bundle; the HTML defaults to the escaped text in a monospace span."""
    if html_text is None:
        html_text = f"<pre style='margin:0'>{html.escape(text)}</pre>"
    return {"text/plain": text, "text/html": html_text}


def _ipython_sink() -> Sink:
    from IPython.display import display, update_display

    display_id = f"vomni-{time.monotonic_ns()}"

    def sink(data: Bundle, first: bool) -> None:
        if first:
            display(data, raw=True, display_id=display_id)
        else:
            update_display(data, raw=True, display_id=display_id)

    return sink


def show(text: str, html_text: str | None = None) -> None:
    """Display one static bundle."""
    from IPython.display import display

    display(bundle(text, html_text), raw=True)


class LiveLine:
    """One output updated in place at most every ``interval`` seconds; ``finish`` always shows the last state."""

    def __init__(self, interval: float = 0.1, *, sink: Sink | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._sink = sink
        self._clock = clock
        self._shown = False
        self._last = float("-inf")
        self.finished = False

    def _emit(self, data: Bundle) -> None:
        if self._sink is None:
            self._sink = _ipython_sink()
        self._sink(data, not self._shown)
        self._shown = True
        self._last = self._clock()

    def due(self) -> bool:
        """Whether an update now would be shown: check it before building one (a fast stream gives thousands
        of states a second, and escaping each whole text as HTML would cost more than the stream itself)."""
        return not self.finished and self._clock() - self._last >= self.interval

    def update(self, text: str, html_text: str | None = None) -> bool:
        """Show ``text`` unless the last update was less than ``interval`` ago; True when shown."""
        if not self.due():
            return False  # dropped: a newer state follows, and finish() always shows the last one
        self._emit(bundle(text, html_text))
        return True

    def finish(self, text: str, html_text: str | None = None) -> None:
        """The final, static state (shown at once, whatever the throttle says)."""
        if not self.finished:
            self._emit(bundle(text, html_text))
            self.finished = True


class _TextStream(Protocol):
    """What show_stream needs of a ChatStream: events to iterate, the text so far, a final result."""

    @property
    def text(self) -> str: ...

    def __iter__(self) -> Any: ...

    def finish(self) -> Any: ...



def _prose_html(text: str) -> str:
    return f"<div style='white-space:pre-wrap'>{html.escape(text)}</div>"


def show_stream(stream: _TextStream, *, interval: float = 0.08, live: LiveLine | None = None) -> Any:
    """Show a streamed answer's text in one output as it arrives, and return the stream's result.

    The output is updated at most every ``interval`` seconds (a fast stream would otherwise flood the
    front end with messages), and always once more at the end, so the saved notebook holds the whole text.
    An async stream (``AsyncChatStream``) goes to :func:`ashow_stream` instead.
    """
    if hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__"):
        from vomni_nb.errors import InvalidRequestError

        # Refused before anything is displayed: no empty output is left behind.
        raise InvalidRequestError("This is an async stream: show it with `await ashow_stream(stream)`.")
    live = live or LiveLine(interval)
    try:
        for _ in stream:
            if live.due():
                text = stream.text
                live.update(text + " ▌", _prose_html(text + " ▌"))
    finally:
        # Whatever ended the stream (Ctrl-C included), the output keeps what arrived.
        live.finish(stream.text, _prose_html(stream.text))
    return stream.finish()


async def ashow_stream(stream: Any, *, interval: float = 0.08, live: LiveLine | None = None) -> Any:
    """:func:`show_stream` for an async stream (``await ashow_stream(await client.chat_stream(...))``)."""
    if not hasattr(stream, "__aiter__"):
        from vomni_nb.errors import InvalidRequestError

        raise InvalidRequestError("This is not an async stream: show it with `show_stream(stream)`.")
    live = live or LiveLine(interval)
    try:
        async for _ in stream:
            if live.due():
                text = stream.text
                live.update(text + " ▌", _prose_html(text + " ▌"))
    finally:
        live.finish(stream.text, _prose_html(stream.text))
    return await stream.finish()


_STYLE = "font-family:monospace;padding:2px 0"


def _span(colour: str, symbol: str, body: str) -> str:
    return f"<div style='{_STYLE}'><span style='color:{colour}'>{symbol}</span> {body}</div>"


class StartStatusLine:
    """Start-up progress of one server as a live line, ending as a summary (a StartReporter)."""

    def __init__(self, live: LiveLine | None = None) -> None:
        self.live = live or LiveLine()

    def phase(self, model: str, phase: str, elapsed: float) -> None:
        text = f"◔ {model}: {phase} … {elapsed:.1f} s"
        body = f"<b>{html.escape(model)}</b>: {html.escape(phase)} … {elapsed:.1f} s"
        self.live.update(text, _span("#b58900", "◔", body))

    def done(self, server: Server, *, reused: bool, note: str = "") -> None:
        """The ready (or reused) summary; ``note`` follows it in brackets."""
        kind = " (vomni-sim)" if server.kind == "sim" else ""
        if reused:
            head = f"reusing {server.model}{kind} at {server.url}"
            tail = f"pid {server.pid}, already running" if server.pid else "already running"
        else:
            head = f"{server.model}{kind} ready at {server.url}"
            ready = f", ready in {server.ready_s:.1f} s" if server.ready_s is not None else ""
            tail = f"pid {server.pid}{ready}"
        if server.keep:
            tail += ", kept after the kernel exits"
        elif server.kind == "vllm" and not reused:
            # A real server holds a GPU: say it goes with the kernel before a restart surprises anyone.
            note = "; ".join(filter(None, (note, _advice.stops_with_kernel(server.model))))
        text = f"✓ {head} — {tail}" + (f" ({note})" if note else "")
        url = html.escape(server.url)
        body = (f"<b>{html.escape(server.model)}</b>{html.escape(kind)} "
                f"{'reused at' if reused else 'ready at'} <a href='{url}/v1/models' target='_blank'>{url}</a> "
                f"— {html.escape(tail)}" + (f" ({html.escape(note)})" if note else ""))
        self.live.finish(text, _span("#2e7d32", "✓", body))

    def failed(self, model: str, error: ServerManagerError | BaseException, elapsed: float) -> None:
        """The failure summary. The cause is not repeated here: the error shown right below says it once."""
        if isinstance(error, Exception):
            what = f"start failed after {elapsed:.1f} s ({type(error).__name__}, below)"
        else:  # an interrupt: no error message will say what became of the server, so this line does
            what = f"start interrupted after {elapsed:.1f} s; the half-started server was stopped"
        self.live.finish(f"✗ {model}: {what}", _span("#c62828", "✗", f"<b>{html.escape(model)}</b>: {html.escape(what)}"))


def status_table(rows: list[dict[str, Any]], columns: list[str]) -> Bundle:
    """A small table as text (aligned columns) and HTML."""
    if not rows:
        return bundle("no servers")
    cells = [[str(row.get(col, "")) for col in columns] for row in rows]
    widths = [max(len(col), *(len(line[i]) for line in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(col.ljust(w) for col, w in zip(columns, widths))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)) for line in cells]
    head = "".join(f"<th style='text-align:left'>{html.escape(col)}</th>" for col in columns)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(c)}</td>" for c in line) + "</tr>"
                   for line in cells)
    return bundle("\n".join(line.rstrip() for line in lines), f"<table><tr>{head}</tr>{body}</table>")


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel, whose front end can update one output in place (a terminal
    IPython would print every update on a line of its own, and plain Python shows nothing)."""
    import sys

    if "IPython" not in sys.modules:  # never import IPython just to ask (a script stays light)
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


Output = tuple[dict[str, Any], dict[str, Any]]  # (data, metadata)


class _Handle(Protocol):
    """One output: ``show`` creates it, ``update`` replaces what it shows."""

    def show(self, output: Output) -> None: ...

    def update(self, output: Output) -> None: ...


class _DisplayHandle:
    def __init__(self) -> None:
        self.display_id = f"vomni-wait-{time.monotonic_ns()}"

    def show(self, output: Output) -> None:
        from IPython.display import display

        display(output[0], metadata=output[1], raw=True, display_id=self.display_id)

    def update(self, output: Output) -> None:
        from IPython.display import update_display

        update_display(output[0], metadata=output[1], raw=True, display_id=self.display_id)


def _output_of(obj: Any) -> Output:
    """(data, metadata) of a result (its ``_repr_mimebundle_``), a bundle dict, or anything else (its repr)."""
    if isinstance(obj, dict):
        return obj, {}
    method = getattr(obj, "_repr_mimebundle_", None)
    if method is not None:
        found = method()
        return (found[0], found[1]) if isinstance(found, tuple) else (found, {})
    return {"text/plain": repr(obj)}, {}


class WaitLine:
    """The live status of a wait (what is being made, on which server, elapsed), replaced by its result.

    Nothing shows for the first ``delay`` seconds (a quick answer never flickers a status line); after
    that ``update`` shows the line, at most every ``interval`` seconds. ``replace(result)`` puts the
    result's static bundle (with its metadata) in the line's place, or displays it afresh when the line
    never showed; ``finish(text)`` ends it as a static line (a failure, an interrupt); ``clear()``
    empties it. ``live=False`` (default: only in a kernel) never shows the line, but ``replace`` still
    displays the result. All calls come from the thread that runs the cell.
    """

    def __init__(self, *, delay: float = 1.0, interval: float = 0.25, live: bool | None = None,
                 handle: _Handle | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.delay = delay
        self.interval = interval
        self.live = in_kernel() if live is None else live
        self._handle = handle
        self._clock = clock
        self._started = clock()
        self._last = float("-inf")
        self.shown = False
        self.ended = False

    def _out(self) -> _Handle:
        if self._handle is None:
            self._handle = _DisplayHandle()
        return self._handle

    def _emit(self, output: Output) -> None:
        if self.shown:
            self._out().update(output)
        else:
            self._out().show(output)
            self.shown = True

    def update(self, text: str, html_text: str | None = None, *, force: bool = False) -> bool:
        """Show the status (after ``delay``, throttled; ``force`` skips both); True when shown."""
        if self.ended or not self.live:
            return False
        now = self._clock()
        if not force and (now - self._started < self.delay or now - self._last < self.interval):
            return False
        self._emit((bundle(text, html_text), {}))
        self._last = now
        return True

    def replace(self, result: Any) -> None:
        """The result, in the line's place (its static bundle and metadata)."""
        if not self.ended:
            self.ended = True
            self._emit(_output_of(result))

    def finish(self, text: str, html_text: str | None = None) -> None:
        """End as a static line (shown even when the wait was short)."""
        if not self.ended:
            self.ended = True
            self._emit((bundle(text, html_text), {}))

    def clear(self) -> None:
        """Leave nothing visible (a silenced result, or a twin that showed its own wait)."""
        if not self.ended:
            self.ended = True
            if self.shown:
                self._out().update(({"text/plain": ""}, {}))


@dataclasses.dataclass(frozen=True)
class StaticOutput:
    """A finished output (data and metadata) that displays as it is: a result shown in pieces (a streamed
    answer's text apart from its player) or several results in one output (a speech batch)."""

    data: dict[str, Any]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Output:
        return self.data, self.metadata
