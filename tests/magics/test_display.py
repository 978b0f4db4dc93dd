"""The live status line: throttled updates of one output, always a final static summary."""

from __future__ import annotations

from vomni_nb.display import LiveLine, StartStatusLine, bundle, status_table
from vomni_nb.errors import ServerExited


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _recorder() -> tuple[list[tuple[dict[str, str], bool]], object]:
    shown: list[tuple[dict[str, str], bool]] = []
    return shown, lambda data, first: shown.append((data, first))


def test_updates_are_throttled_and_finish_always_shows() -> None:
    shown, sink = _recorder()
    clock = FakeClock()
    line = LiveLine(0.1, sink=sink, clock=clock)  # type: ignore[arg-type]
    assert line.update("a")
    clock.now = 0.05
    assert not line.update("b")
    clock.now = 0.12
    assert line.update("c")
    clock.now = 0.13
    line.finish("done")
    assert [d["text/plain"] for d, _ in shown] == ["a", "c", "done"]
    assert [first for _, first in shown] == [True, False, False]  # one output, updated in place
    assert not line.update("late")


def test_a_fast_stream_reads_and_escapes_its_text_only_for_the_updates_shown() -> None:
    # 5,000 events inside one interval: building each state (the whole text, escaped as HTML) would cost
    # more than the stream itself, so only the shown ones are built.
    from vomni_nb.display import show_stream

    class Stream:
        reads = 0
        pieces: list[str] = []

        @property
        def text(self) -> str:
            Stream.reads += 1
            return "".join(self.pieces)

        def __iter__(self):  # type: ignore[no-untyped-def]
            for index in range(5000):
                self.pieces.append(f" w{index}")
                yield index

        def finish(self) -> str:
            return self.text

    shown, sink = _recorder()
    clock = FakeClock()
    line = LiveLine(0.1, sink=sink, clock=clock)  # type: ignore[arg-type]
    assert line.due()
    result = show_stream(Stream(), live=line)  # type: ignore[arg-type]
    assert [d["text/plain"] for d, _ in shown] == [" w0 ▌", result]  # the first state, then the final one
    assert Stream.reads < 10  # once per shown state and for the result, not once per event
    assert not line.due()  # finished: nothing more is shown


def test_bundles_carry_text_and_html() -> None:
    data = bundle("<x> & y")
    assert data["text/plain"] == "<x> & y" and "&lt;x&gt; &amp; y" in data["text/html"]
    table = status_table([{"name": "m", "state": "ready"}], ["name", "state"])
    assert "<table>" in table["text/html"] and table["text/plain"].splitlines()[1].startswith("m")


def test_start_status_line_shows_phase_then_failure() -> None:
    shown, sink = _recorder()
    status = StartStatusLine(LiveLine(0.0, sink=sink))  # type: ignore[arg-type]
    status.phase("org/model", "loading weights", 3.21)
    status.failed("org/model", ServerExited("x", cause="CUDA out of memory: boom"), 4.0)
    assert "loading weights" in shown[0][0]["text/plain"] and "3.2 s" in shown[0][0]["text/plain"]
    assert "failed after 4.0 s" in shown[-1][0]["text/plain"] and "failed" in shown[-1][0]["text/html"]
    # Issue 7.5: the cause is said once, by the error rendered right below the line, not here again.
    assert "CUDA out of memory" not in shown[-1][0]["text/plain"] and "ServerExited" in shown[-1][0]["text/plain"]


def test_an_interrupted_start_says_the_half_started_server_was_stopped() -> None:
    shown, sink = _recorder()
    StartStatusLine(LiveLine(0.0, sink=sink)).failed("org/model", KeyboardInterrupt(), 2.5)  # type: ignore[arg-type]
    assert shown[-1][0]["text/plain"] == "✗ org/model: start interrupted after 2.5 s; the half-started server was stopped"


class _Handle:
    """What StartStatusLine reads of a Server."""

    def __init__(self, kind: str, keep: bool = False) -> None:
        self.model, self.kind, self.keep = "Qwen/Qwen-Image", kind, keep
        self.url, self.pid, self.ready_s = "http://127.0.0.1:8091", 42, 1.5


def test_the_ready_line_of_a_real_server_says_a_kernel_restart_stops_it() -> None:
    # Issue 7.3: a real server holds a GPU; the user learns at once that it goes with the kernel, and how to keep it.
    texts = []
    for handle in (_Handle("vllm"), _Handle("vllm", keep=True), _Handle("sim")):
        shown, sink = _recorder()
        StartStatusLine(LiveLine(0.0, sink=sink)).done(handle, reused=False)  # type: ignore[arg-type]
        texts.append(shown[-1][0]["text/plain"])
    real, kept, sim = texts
    assert "a kernel restart included" in real and "%omni_server start Qwen/Qwen-Image --keep" in real
    assert "kernel restart" not in kept and "kept after the kernel exits" in kept
    assert "kernel restart" not in sim


def test_show_stream_updates_one_output_and_keeps_the_whole_text(omni_server) -> None:  # type: ignore[no-untyped-def]
    from vomni_nb import OmniClient
    from vomni_nb.display import show_stream

    shown, sink = _recorder()
    with OmniClient(omni_server.url) as client:
        stream = client.chat_stream("Tell me about rivers.", modalities=["text"])
        result = show_stream(stream, live=LiveLine(0.0, sink=sink))  # type: ignore[arg-type]
    assert result.text and "rivers" in result.text
    texts = [data["text/plain"] for data, _ in shown]
    assert len(texts) > 2, "the text was shown while it streamed"
    assert [first for _, first in shown].count(True) == 1  # one output, updated in place
    assert texts[-1] == result.text  # the final state is the whole answer, without the cursor
    assert all(text.endswith("▌") for text in texts[:-1])


def test_an_async_stream_is_shown_by_ashow_stream_and_show_stream_leaves_no_empty_output(omni_server) -> None:  # type: ignore[no-untyped-def]
    # Issue 7 item 18: show_stream on an AsyncChatStream raised TypeError and left an empty output behind.
    import asyncio

    import pytest

    from vomni_nb import AsyncOmniClient
    from vomni_nb.display import ashow_stream, show_stream
    from vomni_nb.errors import InvalidRequestError

    shown, sink = _recorder()

    async def main() -> object:
        async with AsyncOmniClient(omni_server.url) as client:
            stream = await client.chat_stream("Tell me about rivers.")
            with pytest.raises(InvalidRequestError, match=r"await ashow_stream\(stream\)"):
                show_stream(stream, live=LiveLine(0.0, sink=sink))  # type: ignore[arg-type]
            assert shown == []  # refused before anything was displayed
            return await ashow_stream(stream, live=LiveLine(0.0, sink=sink))  # type: ignore[arg-type]

    result = asyncio.run(main())
    texts = [data["text/plain"] for data, _ in shown]
    assert texts[-1] == result.text and len(texts) > 2 and [first for _, first in shown].count(True) == 1  # type: ignore[attr-defined]


class RecordingHandle:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def show(self, output: object) -> None:
        self.calls.append(("show", output))

    def update(self, output: object) -> None:
        self.calls.append(("update", output))


def test_wait_line_shows_only_after_its_delay_and_is_replaced_by_the_result() -> None:
    from vomni_nb.display import WaitLine

    handle, clock = RecordingHandle(), FakeClock()
    line = WaitLine(delay=1.0, interval=0.25, live=True, handle=handle, clock=clock)  # type: ignore[arg-type]
    assert not line.update("waiting")  # a quick answer never shows a status line
    clock.now = 1.1
    assert line.update("◔ an image on img … 1.1 s")
    clock.now = 1.2
    assert not line.update("◔ … 1.2 s")  # throttled
    line.replace({"text/plain": "the image"})
    assert [kind for kind, _ in handle.calls] == ["show", "update"]  # one output: the result took the line's place
    assert handle.calls[-1][1] == ({"text/plain": "the image"}, {})
    assert not line.update("late")


def test_a_quick_result_is_displayed_afresh_and_a_silenced_one_leaves_nothing() -> None:
    from vomni_nb.display import WaitLine

    handle = RecordingHandle()
    WaitLine(live=True, handle=handle).replace({"text/plain": "quick"})  # type: ignore[arg-type]
    assert handle.calls == [("show", ({"text/plain": "quick"}, {}))]
    handle, clock = RecordingHandle(), FakeClock()
    line = WaitLine(delay=0, live=True, handle=handle, clock=clock)  # type: ignore[arg-type]
    line.update("waiting")
    line.clear()
    assert handle.calls[-1] == ("update", ({"text/plain": ""}, {}))
    quiet = RecordingHandle()
    WaitLine(live=True, handle=quiet).clear()  # type: ignore[arg-type]
    assert quiet.calls == []
