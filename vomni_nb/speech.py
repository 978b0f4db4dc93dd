"""The speech twins: ``vomni_nb.speak`` and ``vomni_nb.speak_batch`` (the plain functions behind ``%%omni_speak``),
and the voice functions behind ``%omni_voice``.

Each checks every argument before anything is sent, finds its server (:mod:`vomni_nb.routing`: without
``model``/``server``, the server whose model speaks), sends with a live status line in a Jupyter kernel,
saves into ``save`` (never overwriting) and returns the result (see :mod:`vomni_nb._twins`).
``speak(..., stream=True)`` plays the speech while it is generated (the live player of
:mod:`vomni_nb.widgets`) and leaves the static ``<audio controls>`` output in its place: that result is
already shown, so assign it. Nothing here needs IPython outside a kernel.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vomni_nb._twins import Log, Status, call, call_stream, either_spelling, resolve_target, save_result, wait_line
from vomni_nb._sources import check_source, fetch_source
from vomni_nb.errors import BatchItemError, InvalidRequestError
from vomni_nb.protocol.validate import SpeechFormat, check_float, check_int, check_prompt, check_seed, speech_format

if TYPE_CHECKING:
    from vomni_nb._files import PathLike
    from vomni_nb.results import SpeechResult

__all__ = ["speak", "speak_batch", "SpeechBatch", "VoiceList", "check_speech_options", "describe_speech",
           "list_voices", "upload_voice", "delete_voice"]


def check_speech_options(*, voice: Any = None, format: Any = None, speed: Any = None, sample_rate: Any = None,
                         seed: Any = None, stream: bool = False) -> dict[str, Any]:
    """The speech settings checked (InvalidRequestError with the reason), as ``OmniClient.speak`` takes them.

    ``format`` None is pcm when streaming (it plays as it arrives), else wav.
    """
    if voice is not None and (not isinstance(voice, str) or not voice.strip()):
        raise InvalidRequestError(f"voice must be a voice name; got {voice!r}.")
    options: dict[str, Any] = {
        "voice": voice,
        "response_format": speech_format(format or ("pcm" if stream else "wav"), streaming=stream),
        "speed": check_float("speed", speed, 0.25, 4.0) if speed is not None else None,
        "sample_rate": check_int("sample_rate", sample_rate, 1, 384_000) if sample_rate is not None else None,
        "seed": check_seed(seed) if seed is not None else None,
    }
    if stream and options["speed"] not in (None, 1.0):
        raise InvalidRequestError("Streamed speech plays at speed 1.0 (the server refuses another speed while "
                                  "streaming); drop speed, or drop stream to get the whole file at that speed.")
    return {key: value for key, value in options.items() if value is not None}


def describe_speech(options: Mapping[str, Any], count: int = 1) -> str:
    """What a status line says is being made: ``speech (vivian)`` / ``4 utterances``."""
    what = "speech" if count == 1 else f"{count} utterances"
    return what + (f" ({options['voice']})" if options.get("voice") else "")


def _text_options(**values: str | None) -> dict[str, str]:
    """The text settings that were given (instructions, language, ref_text), each a non-empty string."""
    for name, value in values.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidRequestError(f"{name} must be non-empty text; got {value!r}.")
    return {name: value for name, value in values.items() if value is not None}


def _checked_sample(ref_audio: Any) -> Any:
    """``ref_audio`` checked before anything is sent (fetched after routing, by :func:`fetch_source`)."""
    return None if ref_audio is None else check_source(ref_audio, kind="audio", name="ref_audio")


def speak(
    text: str,
    *,
    model: str | None = None,
    server: Any = None,
    voice: str | None = None,
    format: SpeechFormat | None = None,
    speed: float | None = None,
    instructions: str | None = None,
    language: str | None = None,
    sample_rate: int | None = None,
    seed: int | None = None,
    ref_audio: Any = None,
    ref_text: str | None = None,
    stream: bool = False,
    response_format: SpeechFormat | None = None,
    save: PathLike | None = None,
    log: Log = True,
    timeout: float | None = None,
    extra: Mapping[str, Any] | None = None,
    status: Status = None,
) -> SpeechResult:
    """Text to speech on the right server: a SpeechResult (the whole audio file).

    ``model`` / ``server`` (a Server, a name from ``%omni_server list``, or a URL) pick the server; without
    them it is the one whose model speaks. ``voice`` a built-in or uploaded voice; ``format`` wav, pcm, flac,
    mp3 or opus (default wav; pcm when streaming); ``speed`` 0.25-4; ``instructions`` a speaking style;
    ``language``; ``sample_rate`` Hz; ``seed``. ``ref_audio`` clones a voice from a sample (a path, a URL,
    a result, bytes or a history id such as ``"#12"``; Qwen3-TTS ``-Base`` checkpoints) with ``ref_text``
    what the sample says. ``stream=True`` plays it while it is generated (in a notebook, the live player,
    which ends as the static ``<audio controls>`` output: the result is then already shown, so assign it);
    outside a kernel it is just read as it comes. ``save``: a folder to write the file into (never
    overwriting); ``log=False`` keeps it out of the history (``log=`` a store or a path records there);
    ``timeout`` seconds to wait; ``extra`` adds wire fields; ``status`` the live wait line (``False``:
    none). Every argument is checked before anything is sent.

    ``vomni_nb.speak(**result.recipe)`` speaks the same text again with the same settings: a recipe uses the
    client's names, so ``response_format`` is taken as another name for ``format`` (not both).
    """
    check_prompt(text, "text")
    options = check_speech_options(voice=voice, format=either_spelling("format", format, "response_format",
                                                                       response_format),
                                   speed=speed, sample_rate=sample_rate, seed=seed, stream=stream)
    options.update(_text_options(instructions=instructions, language=language, ref_text=ref_text))
    sample = _checked_sample(ref_audio)
    if extra:
        options["extra"] = dict(extra)
    target = resolve_target("speech", model=model, server=server)
    if sample is not None:
        options["ref_audio"] = fetch_source(sample, kind="audio")
    if not stream:
        result: SpeechResult = call("speech", target, lambda client: client.speak(text, **options),
                                    what=describe_speech(options), status=status, timeout=timeout, log=log)
        save_result(result, save)
        return result
    return _speak_streamed(text, options, target, save=save, log=log, timeout=timeout, status=status)


def _speak_streamed(text: str, options: dict[str, Any], target: Any, *, save: Any, log: Log, timeout: float | None,
                    status: Status) -> SpeechResult:
    from vomni_nb._live import SpeechView

    line, owned = wait_line(status)
    # A wait line means someone watches (a kernel, or the IPython a magic runs in): they get the player.
    view = SpeechView(line, describe_speech(options)) if line is not None else None
    try:
        result: SpeechResult = call_stream("speech", target, lambda client: client.speak_stream(text, **options),
                                           what=describe_speech(options), view=view, line=line, timeout=timeout,
                                           log=log)
    except BaseException as exc:
        if view is not None:
            view.fail(exc)
        if owned and line is not None:
            line.clear()
        raise
    save_result(result, save)  # saved before it is shown
    if view is not None:
        view.finish(result)
    return result


@dataclasses.dataclass(frozen=True, repr=False)
class SpeechBatch:
    """Several utterances, in order: each a SpeechResult, or the error of an item the server could not speak
    (in its place; the others are kept). Indexable like a tuple; displays as a list of players."""

    items: tuple[SpeechResult | BatchItemError, ...]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[SpeechResult | BatchItemError]:
        return iter(self.items)

    def __getitem__(self, index: int) -> SpeechResult | BatchItemError:
        return self.items[index]

    @property
    def results(self) -> list[SpeechResult]:
        """The utterances that were spoken (the failed ones left out)."""
        return [item for item in self.items if not isinstance(item, BaseException)]

    @property
    def errors(self) -> list[BatchItemError]:
        return [item for item in self.items if isinstance(item, BaseException)]

    def __repr__(self) -> str:
        failed = f", {len(self.errors)} failed" if self.errors else ""
        return f"SpeechBatch({len(self.results)} utterances{failed})"  # spoken and failed apart, as ImageGrid

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        rows, records, lines = [], [], []
        for index, item in enumerate(self.items, 1):
            if isinstance(item, BaseException):
                rows.append(f"<li><span style='color:#c62828'>✗ {html.escape(str(item))}</span></li>")
                records.append({"kind": "speech", "index": item.index, "text": item.input, "error": str(item)})
                lines.append(f"{index}. ✗ {item}")
                continue
            data, metadata = item._repr_mimebundle_()
            rows.append(f"<li><div>{html.escape(item.text)}</div>{data['text/html']}</li>")
            records.append(metadata.get("vomni_nb", {}))
            lines.append(f"{index}. {item!r}")
        return ({"text/plain": "\n".join([repr(self), *lines]), "text/html": f"<ol>{''.join(rows)}</ol>"},
                {"vomni_nb": {"kind": "speech_batch", "items": records}})

    def save(self, directory: PathLike = ".") -> list[Path]:
        """Write every spoken utterance into ``directory`` (never overwriting); returns the paths."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        return [item.save(Path(directory)) for item in self.results]


def speak_batch(
    texts: Sequence[str],
    *,
    model: str | None = None,
    server: Any = None,
    voice: str | None = None,
    format: SpeechFormat | None = None,
    speed: float | None = None,
    instructions: str | None = None,
    language: str | None = None,
    sample_rate: int | None = None,
    ref_audio: Any = None,
    ref_text: str | None = None,
    save: PathLike | None = None,
    log: Log = True,
    timeout: float | None = None,
    status: Status = None,
) -> SpeechBatch:
    """Several utterances with the same settings, in one request to the server's batch route
    (``/v1/audio/speech/batch``): a SpeechBatch, one entry per text, in order.

    An utterance the server could not speak is a :class:`~vomni_nb.errors.BatchItemError` in its place;
    the others are kept. Bad input (an empty text, a bad format) fails the whole call before anything is
    sent, and so does a failure of the whole request (a refused voice, a dead server). The other
    arguments are :func:`speak`'s (no streaming, no seed: the batch route takes none).
    """
    if isinstance(texts, str) or not texts:
        raise InvalidRequestError("speak_batch takes a list of texts (one utterance each); got "
                                  f"{'one string' if isinstance(texts, str) else 'none'}.")
    items = [check_prompt(text, f"text {index}") for index, text in enumerate(texts, 1)]
    options = check_speech_options(voice=voice, format=format, speed=speed, sample_rate=sample_rate)
    options.update(_text_options(instructions=instructions, language=language, ref_text=ref_text))
    sample = _checked_sample(ref_audio)
    target = resolve_target("speech", model=model, server=server)
    if sample is not None:
        options["ref_audio"] = fetch_source(sample, kind="audio")
    results: list[SpeechResult | BatchItemError] = call(
        "speech", target, lambda client: client.speak_batch(items, **options),
        what=describe_speech(options, len(items)), status=status, timeout=timeout, log=log)
    batch = SpeechBatch(tuple(results))
    if save is not None:
        batch.save(save)
    return batch


@dataclasses.dataclass(frozen=True, repr=False)
class VoiceList:
    """A speech server's voices: ``builtin`` names and ``uploaded`` voices (name, consent, created_at, ...)."""

    builtin: tuple[str, ...]
    uploaded: tuple[Mapping[str, Any], ...]
    server_url: str | None = None

    @property
    def names(self) -> list[str]:
        return sorted({*self.builtin, *(str(voice.get("name")) for voice in self.uploaded)})

    def __repr__(self) -> str:
        return f"VoiceList({len(self.builtin)} built-in, {len(self.uploaded)} uploaded)"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        from vomni_nb.display import status_table

        rows = [{"voice": name, "kind": "built-in", "consent": "", "created": ""} for name in self.builtin]
        rows += [{"voice": str(voice.get("name", "")), "kind": "uploaded", "consent": str(voice.get("consent", "")),
                  "created": str(voice.get("created_at", ""))} for voice in self.uploaded]
        return status_table(rows, ["voice", "kind", "consent", "created"]) if rows else {
            "text/plain": "no voices", "text/html": "<i>no voices</i>"}, {}


def _voice_target(model: str | None, server: Any) -> Any:
    return resolve_target("speech", model=model, server=server)


def list_voices(*, model: str | None = None, server: Any = None, status: Status = None) -> VoiceList:
    """The voices of the server whose model speaks (or ``model`` / ``server``'s)."""
    target = _voice_target(model, server)
    found: dict[str, Any] = call("speech", target, lambda client: client.voices.list(), what="the voice list",
                                 status=status)
    return VoiceList(tuple(str(name) for name in found.get("voices", [])),
                     tuple(voice for voice in found.get("uploaded_voices", []) if isinstance(voice, Mapping)),
                     target.url)


def upload_voice(name: str, audio: Any, *, consent: str, ref_text: str | None = None, model: str | None = None,
                 server: Any = None, status: Status = None) -> dict[str, Any]:
    """Upload a voice sample (a path, bytes or a SpeechResult) as ``name``; ``consent`` says how the speaker
    agreed to its use. Returns the server's record of the voice."""
    check_prompt(name, "voice name")
    if not isinstance(consent, str) or not consent.strip():
        raise InvalidRequestError("consent is required: say how the speaker agreed to have their voice used.")
    checked = check_source(audio, kind="audio", name="the voice sample")
    target = _voice_target(model, server)
    sample = fetch_source(checked, kind="audio")
    voice: dict[str, Any] = call("speech", target, lambda client: client.voices.upload(
        name, sample, consent=consent, ref_text=ref_text), what=f"uploading voice {name!r}", status=status)
    return voice


def delete_voice(name: str, *, model: str | None = None, server: Any = None, status: Status = None) -> dict[str, Any]:
    """Delete the uploaded voice ``name``."""
    check_prompt(name, "voice name")
    target = _voice_target(model, server)
    answer: dict[str, Any] = call("speech", target, lambda client: client.voices.delete(name),
                                  what=f"deleting voice {name!r}", status=status)
    return answer
