"""Every result recorded in the history, in one place: around the plan a client method runs.

Each generating method of both clients runs its plan wrapped by :meth:`CallRecording.plan`; a
streamed answer is recorded when it ends, through :meth:`CallRecording.stream_state`. Nothing in the
capabilities themselves knows about the history.

Rules:

1. Recorded before returned: the result a method gives back (each cell of a sweep, as it finishes)
   is already in the store, carrying ``stored`` (its history id and files), so whatever displays it
   displays a saved result.
2. Recording is a step the plan yields (:class:`Record`), performed by the client like a send: the
   sync client runs it in line, the async client in a worker thread, so plans stay free of I/O and an
   event loop is never held up by a disk.
3. A generation that failed (an error status, a broken connection or stream, a failed job) is
   recorded with status ``error`` and its message, redacted. A request refused before it was sent
   (InvalidRequestError) and an interrupt are not generations and are not recorded.
4. Recording never loses a result: when the store fails (a full disk, a file we did not write), the
   result comes back whole with ``stored.note`` saying why (a warning the notebook layer shows), and
   the note is logged as a warning. A failure to record a failure is only logged.
5. Where: the client's ``history=``: a HistoryStore, None (the default store: ``VOMNI_HISTORY`` or the
   user cache dir) or False (off). ``VOMNI_HISTORY=off`` and ``set_history_enabled(False)`` turn it
   off everywhere. The store is looked up when a result is recorded, so a switch applies at once.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

from vomni_nb._core import Gather, Plan
from vomni_nb.errors import InvalidRequestError, redact
from vomni_nb.provenance import _json_safe  # the one rule that makes a record JSON-safe (bytes -> "<N bytes>")
from vomni_nb.results import ChatResult, ImageBatch, ImageResult, SpeechResult, Stored, VideoResult

if TYPE_CHECKING:
    from vomni_nb._history import HistoryStore
    from vomni_nb.protocol.streaming import StreamEvent, StreamState

__all__ = ["HistorySetting", "Record", "CallRecording", "RecordingState", "GENERATIONS", "check_setting"]

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("vomni_nb.history")

HistorySetting = Union["HistoryStore", None, Literal[False]]

# plan name -> the kind of history entry it makes
GENERATIONS: Mapping[str, str] = {"image": "image", "edit": "edit", "chat": "chat", "chat_stream": "chat",
                                  "speak": "speech", "speak_stream": "speech", "video": "video",
                                  # a job started earlier, fetched now: its file is saved like any video's
                                  "wait_video": "video", "download_video": "video",
                                  # one request, many utterances: each spoken item is its own entry
                                  "speak_batch": "speech"}
# plans that run other plans (a sweep's cells): not recorded themselves, their cells are
_SWEEPS = frozenset({"images"})
# arguments that hold input media (stored with the entry, so a rerun can send them again)
_INPUTS: Mapping[str, tuple[str, ...]] = {"edit": ("image",), "chat": ("images", "audio"), "video": ("image",)}
_RESULTS = (ImageResult, ImageBatch, SpeechResult, ChatResult, VideoResult)


def check_setting(history: Any) -> HistorySetting:
    """``history=`` as a client takes it: a HistoryStore, None or False; anything else is refused."""
    if history is None or history is False:
        return history  # type: ignore[no-any-return]
    from vomni_nb._history import HistoryStore

    if isinstance(history, HistoryStore):
        return history
    raise InvalidRequestError(f"history= takes a HistoryStore, None (the default store) or False (off); got {history!r}.")


@dataclasses.dataclass(frozen=True)
class Record:
    """A plan step: run ``action`` (history I/O) outside the plan; the outcome is what it returns."""

    action: Callable[[], Any]


class CallRecording:
    """The recording of one method call: ``plan`` (the wrapped plan to run), and the call's arguments."""

    def __init__(self, plan: Plan[Any], setting: HistorySetting) -> None:
        self.name = getattr(plan, "__name__", "") if inspect.isgenerator(plan) else ""
        self.kind = GENERATIONS.get(self.name)
        # The plan has not started: its locals are exactly the call's arguments (core included).
        self.arguments = dict(inspect.getgeneratorlocals(plan)) if self.kind else {}
        self.setting = setting
        self.plan: Plan[Any] = _recorded(plan, self) if self.kind or self.name in _SWEEPS else plan

    # --- the store -----------------------------------------------------------------------------

    def _store(self) -> HistoryStore | None:
        if self.setting is False:
            return None
        if self.setting is None:
            from vomni_nb._history import default_store

            return default_store()
        return self.setting

    def _secret(self) -> str | None:
        core = self.arguments.get("core")
        return getattr(core, "api_key", None)

    def _inputs(self) -> list[bytes]:
        from vomni_nb.protocol.media import load_media

        found: list[bytes] = []
        for name in _INPUTS.get(self.kind or "", ()):
            value = self.arguments.get(name)
            for source in value if isinstance(value, (list, tuple)) else ([] if value is None else [value]):
                found.append(load_media(source).data)
        return found

    # --- results -------------------------------------------------------------------------------

    def result(self, result: R) -> R:
        """``result`` recorded (with ``stored`` set), or with ``stored.note`` when the store failed (rule 4)."""
        try:
            store = self._store()
            return result if store is None else _record(store, result, self._inputs())
        except Exception as exc:  # noqa: BLE001 - rule 4: whatever broke, the result is returned
            note = redact(str(exc) if str(exc) else type(exc).__name__, self._secret())
            log.warning("This result was not recorded in the history: %s", note)
            return _noted(result, note)

    def failed(self, error: BaseException) -> None:
        """Record that the generation failed with ``error`` (rule 3); only logged when that fails too."""
        if not isinstance(error, Exception) or isinstance(error, InvalidRequestError) or self.kind is None:
            return
        try:
            store = self._store()
            if store is not None:
                text = redact(f"{type(error).__name__}: {error}", self._secret())
                store.record(self._failure_record(), status="error", error=text, inputs=self._inputs())
        except Exception as exc:  # noqa: BLE001 - the generation's own error is what the caller sees
            log.warning("The failed generation was not recorded in the history: %s", redact(str(exc), self._secret()))

    def _failure_record(self) -> dict[str, Any]:
        """The record of a generation that gave no result: what was asked, as the call's arguments."""
        core = self.arguments.get("core")
        arguments = {name: value for name, value in self.arguments.items()
                     if name not in ("core", "on_progress") and value is not None}
        prompt = arguments.get("prompt", arguments.get("text", ""))
        model = arguments.get("model") or getattr(core, "recorded_model", None)
        seed = arguments.get("seed")
        return {
            "schema": "vomni_nb/1", "kind": self.kind, "server_url": getattr(core, "base_url", None), "model": model,
            "prompt": prompt if isinstance(prompt, str) else _json_safe(prompt),
            "params": _json_safe({k: v for k, v in arguments.items() if k not in ("prompt", "text")}),
            "seed": seed if isinstance(seed, int) else None, "method": self.name, "arguments": _json_safe(arguments),
        }

    def stream_state(self, state: StreamState[Any]) -> RecordingState:
        """``state`` of a stream this call opened, recording its result when it ends (or its failure)."""
        return RecordingState(state, self)


def _recorded(plan: Plan[T], call: CallRecording) -> Generator[Any, Any, T]:
    """``plan``, with its result (or failure) recorded as a last step, and each plan of a Gather wrapped too."""
    try:
        result = yield from _passing_on(plan, call.setting)
    except Exception as exc:
        if call.kind is not None:
            yield Record(functools.partial(call.failed, exc))
        raise
    if call.kind is not None and isinstance(result, _RESULTS):
        result = yield Record(functools.partial(call.result, result))
    elif call.kind is not None and isinstance(result, list):  # speak_batch: its BatchItemErrors stay as they are
        recorded = []
        for entry in result:
            recorded.append((yield Record(functools.partial(call.result, entry))) if isinstance(entry, _RESULTS)
                            else entry)
        result = recorded  # type: ignore[assignment]
    return result


def _passing_on(plan: Plan[T], setting: HistorySetting) -> Generator[Any, Any, T]:
    """``yield from plan``, except that the plans of a Gather step (a sweep's cells) are recorded each."""
    outcome: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = plan.throw(error) if error is not None else plan.send(outcome)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if isinstance(step, Gather):
            step = dataclasses.replace(step, plans=[CallRecording(sub, setting).plan for sub in step.plans])
        try:
            outcome, error = (yield step), None
        except GeneratorExit:
            plan.close()
            raise
        except BaseException as exc:  # what performing the step raised (Ctrl-C too): the plan decides
            outcome, error = None, exc


class RecordingState:
    """A stream's state (see ``protocol.streaming.StreamState``) whose final result is recorded."""

    def __init__(self, state: Any, call: CallRecording) -> None:
        self._state = state
        self._call = call
        self._failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)  # done, text, audio, partial, ...: the state's own

    def failed(self, error: BaseException) -> None:
        """The stream ended with ``error``: seen here (a bad event) or by the stream (a broken connection, a
        timeout, a limit); recorded once either way, an interrupt not at all (rule 3)."""
        if not self._failed:
            self._failed = True
            self._call.failed(error)

    def feed_body(self, chunk: bytes) -> list[StreamEvent]:
        try:
            return self._state.feed_body(chunk)  # type: ignore[no-any-return]
        except Exception as exc:
            self.failed(exc)
            raise

    def end_body(self) -> list[StreamEvent]:
        try:
            return self._state.end_body()  # type: ignore[no-any-return]
        except Exception as exc:
            self.failed(exc)
            raise

    def result(self, timings: Mapping[str, float] | None = None) -> Any:
        return self._call.result(self._state.result(timings))


# --- what of each result is stored ---------------------------------------------------------------------


def _noted(result: R, note: str) -> R:
    if isinstance(result, ImageBatch):
        return ImageBatch(tuple(_noted(image, note) for image in result.images), timings=result.timings)  # type: ignore[return-value]
    return dataclasses.replace(result, stored=Stored(note=note))  # type: ignore[type-var]


def _output_facts(result: Any) -> dict[str, Any]:
    """What the output adds to the provenance record (kept in the entry's record JSON)."""
    if isinstance(result, ImageResult):
        return {"size": result.size, "format": result.format, "index": result.index}
    if isinstance(result, SpeechResult):
        return {"format": result.format, "sample_rate": result.sample_rate, "duration_s": result.duration_s}
    if isinstance(result, ChatResult):
        return {"answer": result.text, "finish_reason": result.finish_reason, "audio_format": result.audio_format,
                "usage": _json_safe(result.usage), "images": len(result.images)}
    if isinstance(result, VideoResult):
        return {"id": result.id, "width": result.width, "height": result.height, "fps": result.fps,
                "num_frames": result.num_frames, "duration_s": result.duration_s}
    return {}


def _record(store: HistoryStore, result: R, inputs: Sequence[bytes]) -> R:
    from vomni_nb._files import image_bytes

    images: tuple[ImageResult, ...] = ()
    if isinstance(result, (ImageResult, ImageBatch)):
        images = (result,) if isinstance(result, ImageResult) else result.ok  # one request: no failed places
        if not images:
            return result
        first: Any = images[0]
        files: list[Any] = [image_bytes(image) for image in images]
    elif isinstance(result, SpeechResult):
        first, files = result, [(result.audio, result.format)]
    elif isinstance(result, ChatResult):
        first = result
        files = ([(result.audio, result.audio_format or "")] if result.audio is not None else [])
        files += [image.data for image in result.images]
    else:
        assert isinstance(result, VideoResult)
        first, files = result, [result.data]
    record = {**first.provenance.to_record(), **_output_facts(first)}
    if len(images) > 1:
        record["n"] = len(images)
    metrics = getattr(first, "metrics", None)
    entry = store.record(record, files=files, metrics=dict(metrics) if metrics else None, embed_recipe=False,
                         inputs=inputs)
    if entry is None:  # turned off everywhere
        return result
    paths = tuple(stored.path for stored in entry.files)
    if images:
        marked = tuple(dataclasses.replace(image, stored=Stored(entry.id, paths[i:i + 1] + paths[:i] + paths[i + 1:]))
                       for i, image in enumerate(images))
        if isinstance(result, ImageResult):
            return marked[0]  # type: ignore[return-value]
        assert isinstance(result, ImageBatch)
        return ImageBatch(marked, timings=result.timings)  # type: ignore[return-value]
    return dataclasses.replace(result, stored=Stored(entry.id, paths))  # type: ignore[type-var]
