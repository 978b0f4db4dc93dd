"""The chat twins: :class:`Conversation` (a chat that remembers) and ``vomni_nb.chat`` (the kernel's default
conversation), the plain Python behind ``%%omni_chat``.

A conversation keeps the whole exchange as the OpenAI chat API does (``messages``: an optional system
message, then user and assistant turns) and sends all of it with each new message, so the model knows
what "it" refers to. Rules:

1. A turn is added only when its answer arrived in full: an error or Ctrl-C leaves the conversation as
   it was, so the same cell can simply run again.
2. Every argument is checked before anything is sent (media files included); the server is found per
   turn by routing (the server whose model chats), unless the conversation or the turn names one.
3. Attached media (``images``, ``audio``: paths, URLs, results, bytes, history ids) become ``data:`` URL
   parts of that turn's user message and stay in the history, as the API expects.
4. By default the answer is text; a ``voice`` or ``modalities=["text", "audio"]`` adds a spoken answer,
   embedded as MP3 (WAV when streamed, so it plays as it arrives). Both are sent explicitly.
5. ``stream=True`` shows the text as it arrives (and plays a spoken answer) in a Jupyter kernel, and
   leaves the static answer in place: the result is then already shown, so assign it. Outside a kernel
   the stream is read quietly.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vomni_nb._sources import check_sources, fetch_sources
from vomni_nb._twins import Log, Status, call, call_stream, resolve_target, save_result, wait_line
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.validate import (
    STREAMING_SPEECH_FORMATS,
    check_float,
    check_int,
    check_prompt,
    check_seed,
    speech_format,
)

if TYPE_CHECKING:
    from vomni_nb._files import PathLike
    from vomni_nb.results import ChatResult

__all__ = ["Conversation", "chat", "default_conversation", "check_chat_options", "MODALITIES"]

MODALITIES = ("text", "audio", "image")


def check_chat_options(*, modalities: Any = None, voice: Any = None, audio_format: Any = None, stream: bool = False,
                       max_tokens: Any = None, temperature: Any = None, seed: Any = None) -> dict[str, Any]:
    """The answer's shape and sampling, checked and made explicit (rule 4), as ``OmniClient.chat`` takes them."""
    if modalities is None:
        wanted = ["text", "audio"] if voice is not None else ["text"]
    else:
        wanted = [m.strip() for m in modalities.split(",")] if isinstance(modalities, str) else list(modalities)
        unknown = [m for m in wanted if m not in MODALITIES]
        if not wanted or unknown:
            raise InvalidRequestError(f"modalities must be some of {', '.join(MODALITIES)} (e.g. text,audio); "
                                      f"got {modalities!r}.")
    if voice is not None:
        if not isinstance(voice, str) or not voice.strip():
            raise InvalidRequestError(f"voice must be a speaker name; got {voice!r}.")
        if "audio" not in wanted:
            raise InvalidRequestError("A voice is for spoken answers: add audio to the modalities (text,audio).")
    options: dict[str, Any] = {"modalities": wanted, "voice": voice}
    if "audio" in wanted:
        fmt = speech_format(audio_format or ("wav" if stream else "mp3"), streaming=False)
        if stream and fmt not in STREAMING_SPEECH_FORMATS:
            # The chat route would send it, each chunk a file of its own: nothing to play until the end.
            raise InvalidRequestError(f"A streamed spoken answer plays as it arrives, which takes wav or pcm; got "
                                      f"{audio_format!r}. For {fmt}, pass stream=False (the answer comes whole).")
        options["audio_format"] = fmt
    elif audio_format is not None:
        raise InvalidRequestError("audio_format is for spoken answers: add audio to the modalities.")
    if max_tokens is not None:
        options["max_tokens"] = check_int("max_tokens", max_tokens, 1, 1_000_000)
    if temperature is not None:
        options["temperature"] = check_float("temperature", temperature, 0.0, 2.0)
    if seed is not None:
        options["seed"] = check_seed(seed)
    return {key: value for key, value in options.items() if value is not None}


def _user_message(prompt: str, images: Sequence[Any], audio: Sequence[Any]) -> dict[str, Any]:
    """The user turn as the API takes it: plain text, or text and media as data: URL parts."""
    if not images and not audio:
        return {"role": "user", "content": prompt}
    from vomni_nb.protocol.dataurl import encode_data_url
    from vomni_nb.protocol.media import load_media

    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for image in images:
        item = load_media(image, "image/png")
        parts.append({"type": "image_url", "image_url": {"url": encode_data_url(item.data, item.mime_type)}})
    for clip in audio:
        item = load_media(clip, "audio/wav")
        parts.append({"type": "audio_url", "audio_url": {"url": encode_data_url(item.data, item.mime_type)}})
    return {"role": "user", "content": parts}


class Conversation:
    """A chat that remembers (module rules): ``send`` a message, get the answer; the next ``send`` sends
    the whole exchange.

    ::

        talk = vomni_nb.Conversation(system="Answer in one sentence.")
        talk.send("What is a lighthouse?")
        talk.send("Who keeps it?")                  # the model sees the first question and answer too
        talk.messages                               # [{"role": "system", ...}, {"role": "user", ...}, ...]
        talk.reset()                                # start over (keeps the system message)

    ``model`` / ``server`` pin the conversation to a model or server (default: routing picks the server
    whose model chats, for each turn). ``messages`` starts from an exchange in the chat API's form (a
    leading system message becomes ``system``); the answers it holds have no results.
    """

    def __init__(self, *, system: str | None = None, model: str | None = None, server: Any = None,
                 messages: Sequence[Mapping[str, Any]] = ()) -> None:
        turns = [dict(message) for message in messages]
        for message in turns:
            if message.get("role") not in ("system", "user", "assistant") or "content" not in message:
                raise InvalidRequestError(f"Each message needs a role (system, user or assistant) and a content; got "
                                          f"{str(message)[:80]}.")
        if turns and turns[0]["role"] == "system":
            system = system or str(turns.pop(0)["content"])
        if any(message["role"] == "system" for message in turns):
            raise InvalidRequestError("Only the first message may be the system message.")
        self.system = system
        self.model = model
        self.server = server
        self._turns: list[dict[str, Any]] = copy.deepcopy(turns)
        self._results: list[ChatResult] = []

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The exchange as the chat API takes it (a copy): the system message, then each user and assistant turn."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return copy.deepcopy(head + self._turns)

    @property
    def results(self) -> tuple[ChatResult, ...]:
        """Every answer so far, oldest first."""
        return tuple(self._results)

    @property
    def last(self) -> ChatResult | None:
        return self._results[-1] if self._results else None

    def __len__(self) -> int:
        """The number of answers in the exchange."""
        return sum(message["role"] == "assistant" for message in self._turns)

    def __repr__(self) -> str:
        system = f", system={self.system[:40]!r}" if self.system else ""
        pinned = f", model={self.model!r}" if self.model else (f", server={self.server!r}" if self.server else "")
        return f"Conversation({len(self)} turns{system}{pinned})"

    def reset(self, *, system: str | None = None) -> None:
        """Forget every turn; ``system`` replaces the system message when given."""
        self._turns.clear()
        self._results.clear()
        if system is not None:
            self.system = system

    def send(
        self,
        prompt: str,
        *,
        images: Any = (),
        audio: Any = (),
        system: str | None = None,
        modalities: Sequence[str] | str | None = None,
        voice: str | None = None,
        audio_format: str | None = None,
        stream: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        model: str | None = None,
        server: Any = None,
        save: PathLike | None = None,
        log: Log = True,
        timeout: float | None = None,
        extra: Mapping[str, Any] | None = None,
        status: Status = None,
    ) -> ChatResult:
        """Send ``prompt`` (with ``images`` / ``audio`` attached: paths, URLs, results, bytes or history ids)
        after the exchange so far; returns the answer (a ChatResult) and adds both to the conversation.

        ``system`` replaces the system message from this turn on. ``modalities`` ``["text"]`` (default) or
        ``["text", "audio"]``; ``voice`` a speaker (it implies audio); ``audio_format`` of a spoken answer
        (default mp3; wav when streamed). ``stream=True`` shows the answer as it arrives (module rule 5).
        ``max_tokens``, ``temperature``, ``seed`` sample; ``model`` / ``server`` pick the server for this
        turn; ``save`` a folder for the answer (Markdown, never overwriting); ``log=False`` keeps it out of
        the history; ``timeout`` seconds; ``extra`` adds wire fields; ``status`` the live wait line.
        """
        check_prompt(prompt)
        image_sources = check_sources(images, kind="image", name="images")
        audio_sources = check_sources(audio, kind="audio", name="audio")
        options = check_chat_options(modalities=modalities, voice=voice, audio_format=audio_format, stream=stream,
                                     max_tokens=max_tokens, temperature=temperature, seed=seed)
        if system is not None and not system.strip():
            raise InvalidRequestError("system is empty: give the system message's text, or leave it out.")
        target = resolve_target("chat", model=model or self.model, server=server or self.server)
        turn = _user_message(prompt, fetch_sources(image_sources, kind="image"),
                             fetch_sources(audio_sources, kind="audio"))
        system = system or self.system
        head = [{"role": "system", "content": system}] if system else []
        # The whole exchange goes in the wire's `messages` (extra wins over the built one), while the
        # prompt argument keeps this turn's text, so the provenance and the history name this turn, not
        # every earlier one with its data: URLs.
        wire = {**(extra or {}), "messages": head + copy.deepcopy(self._turns) + [turn]}
        if system:
            options["system"] = system
        what = "an answer" + (" (spoken)" if "audio" in options["modalities"] else "")
        if stream:
            result = _streamed(target, prompt, options, wire, what=what, log=log, timeout=timeout, status=status,
                               save=save)
        else:
            result = call("chat", target, lambda client: client.chat(prompt, **options, extra=wire), what=what,
                          status=status, timeout=timeout, log=log)
            save_result(result, save)
        self.system = system
        self._turns += [turn, {"role": "assistant", "content": result.text}]
        self._results.append(result)
        return result


def _streamed(target: Any, prompt: str, options: dict[str, Any], wire: dict[str, Any], *, what: str, log: Log,
              timeout: float | None, status: Status, save: Any) -> ChatResult:
    from vomni_nb._live import ChatView

    line, owned = wait_line(status)
    view = ChatView(line, what) if line is not None else None
    try:
        result: ChatResult = call_stream("chat", target, lambda client: client.chat_stream(prompt, **options,
                                                                                           extra=wire),
                                         what=what, view=view, line=line, timeout=timeout, log=log)
    except BaseException as exc:
        if view is not None:
            view.fail(exc)
        if owned and line is not None:
            line.clear()  # ours, and not ended by the view: nothing arrived to keep
        raise
    save_result(result, save)  # saved before it is shown
    if view is not None:
        view.finish(result)
    return result


_DEFAULT: list[Conversation] = []


def default_conversation() -> Conversation:
    """The kernel's conversation: the one ``vomni_nb.chat`` and ``%%omni_chat`` continue."""
    if not _DEFAULT:
        _DEFAULT.append(Conversation())
    return _DEFAULT[0]


def chat(
    prompt: str,
    *,
    new: bool = False,
    images: Any = (),
    audio: Any = (),
    system: str | None = None,
    modalities: Sequence[str] | str | None = None,
    voice: str | None = None,
    audio_format: str | None = None,
    stream: bool = False,
    max_tokens: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    model: str | None = None,
    server: Any = None,
    save: PathLike | None = None,
    log: Log = True,
    timeout: float | None = None,
    extra: Mapping[str, Any] | None = None,
    status: Status = None,
) -> ChatResult:
    """One turn of the kernel's default conversation (:func:`default_conversation`); ``new=True`` starts it
    over first (keeping no turns and no system message, unless ``system`` gives one). The other arguments
    are :meth:`Conversation.send`'s. ``vomni_nb.Conversation()`` makes a conversation of your own."""
    conversation = default_conversation()
    # A new conversation replaces the old one only once its first answer arrived (rule 1: a failed cell
    # leaves everything as it was).
    speaker = Conversation() if new else conversation
    result = speaker.send(prompt, images=images, audio=audio, system=system, modalities=modalities, voice=voice,
                          audio_format=audio_format, stream=stream, max_tokens=max_tokens, temperature=temperature,
                          seed=seed, model=model, server=server, save=save, log=log, timeout=timeout, extra=extra,
                          status=status)
    if speaker is not conversation:
        conversation.reset()
        conversation.system = speaker.system
        conversation._turns, conversation._results = speaker._turns, speaker._results
    return result
