"""Sans-IO stream state: feed it body bytes (or SSE events), get typed events and a final result.

Both clients drive the same state objects through one protocol, :class:`StreamState`; only the way
bytes arrive differs. Rules: an in-band error event raises StreamError carrying what had arrived
before it (``partial``: text for chat, audio for speech); a body that ends before its final event
raises StreamError too, since a silently short answer would look complete. A stream is bounded by
its :class:`~vomni_nb.protocol.limits.Limits` (bytes received, text collected, one SSE line): past
one, StreamError names the limit and keeps what arrived. Only our errors escape (the stream may be
hostile): every field read from an event is type-checked, and the entry points are guarded
(:func:`~vomni_nb.protocol.untrusted.reads_untrusted`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, Union

from vomni_nb.errors import ResponseFormatError, StreamError
from vomni_nb.protocol.dataurl import decode_base64
from vomni_nb.protocol.limits import DEFAULT_LIMITS, Limits, StreamBounds
from vomni_nb.protocol.parse import DEFAULT_PCM_RATE, answered_by, chat_images, parse_chat_json
from vomni_nb.protocol.sse import SSEDecoder, SSEEvent
from vomni_nb.protocol.untrusted import load_json, reads_untrusted
from vomni_nb.protocol.wav import parse_wav, pcm_to_wav
from vomni_nb.provenance import Provenance
from vomni_nb.results import ChatResult, ImageResult, SpeechResult

__all__ = ["TextDelta", "AudioDelta", "ImageDelta", "StreamEvent", "StreamState", "ChatStreamState",
           "SpeechStreamState"]

WAV_HEADER_SIZE = 44
R_co = TypeVar("R_co", covariant=True)


def _event_json(event: SSEEvent, what: str) -> Any:
    """The JSON payload of one SSE event; ``what`` names it in the error for a body that is not JSON."""
    return load_json(event.data, what)


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None

@dataclasses.dataclass(frozen=True)
class TextDelta:
    text: str


@dataclasses.dataclass(frozen=True)
class AudioDelta:
    """A piece of audio: ``pcm`` is decoded 16-bit PCM (None for compressed formats, see ``raw``)."""

    pcm: bytes | None
    sample_rate: int | None
    channels: int = 1
    raw: bytes = b""


@dataclasses.dataclass(frozen=True)
class ImageDelta:
    image: ImageResult


StreamEvent = Union[TextDelta, AudioDelta, ImageDelta]


class StreamState(Protocol[R_co]):
    """What a stream object drives, whatever the stream carries: body bytes in, events out, one result."""

    done: bool  # the final event arrived

    @property
    def text(self) -> str:
        """The text so far ("" for speech)."""

    @property
    def audio(self) -> bytes | None:
        """The audio so far, as one file."""

    @property
    def partial(self) -> Any:
        """What an error carries of the answer so far (text for chat, audio for speech)."""

    def feed_body(self, chunk: bytes) -> list[StreamEvent]:
        """The events completed by the next piece of the response body (any split)."""

    def end_body(self) -> list[StreamEvent]:
        """The body ended: the events still pending. StreamError if the final event never came."""

    def result(self, timings: Mapping[str, float] | None = None) -> R_co:
        """The final result."""

    def bound(self, limits: Limits) -> None:
        """Read the rest of the stream under ``limits`` (the client's), rather than the defaults."""


def _cut_short(partial: Any, url: str | None) -> StreamError:
    return StreamError(
        "The stream ended before its final event (server crash or dropped connection); what arrived is in .partial.",
        url=url,
        partial=partial,
    )


def _stream_error(payload: Any, partial: Any, url: str | None) -> StreamError:
    error = payload.get("error") if isinstance(payload, Mapping) else None
    error = error if isinstance(error, Mapping) else {"message": str(error)[:2000]}
    message = str(error.get("message") or "unknown error")[:2000]
    code = error.get("code")
    return StreamError(
        f"The server reported an error after the stream started: {message.rstrip('.')}. What arrived before it "
        "is in .partial; the request was not retried.",
        url=url,
        partial=partial,
        error_type=_text_or_none(error.get("type")),
        code=code if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
    )


class ChatStreamState:
    """Accumulates a chat SSE stream: text deltas, audio chunks (joined as PCM), image items.

    ``content_type`` is the response's: a pure-diffusion server ignores ``stream`` and answers one
    JSON body, which is read whole at the end and replayed as events.
    """

    def __init__(self, provenance: Provenance, content_type: str = "text/event-stream",
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.provenance = provenance
        self.done = False
        self._json_body = content_type.startswith("application/json")
        self._sse = SSEDecoder(limits.max_line_bytes)
        self._bounds = StreamBounds(limits)
        self._body = bytearray()
        self._text: list[str] = []
        self._pcm: list[bytes] = []
        self._raw_audio: list[bytes] = []
        self._sample_rate: int | None = None
        self._channels = 1
        self._images: list[ImageResult] = []
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] = {}
        self._metrics: dict[str, Any] = {}
        self._id: str | None = None
        self._model: str | None = None
        self._final: ChatResult | None = None

    @property
    def text(self) -> str:
        # Read after every event by live views: the pieces are joined once, not all of them on every read.
        if len(self._text) > 1:
            self._text[:] = ["".join(self._text)]
        return self._text[0] if self._text else ""

    @property
    def audio(self) -> bytes | None:
        """The audio so far: one WAV file of the joined PCM (or the raw chunks for compressed formats)."""
        if self._pcm:
            return pcm_to_wav(b"".join(self._pcm), self._sample_rate or DEFAULT_PCM_RATE, self._channels)
        return b"".join(self._raw_audio) or None

    @property
    def partial(self) -> str:
        return self.text

    def bound(self, limits: Limits) -> None:
        self._bounds.limits = limits
        self._sse.max_line_bytes = limits.max_line_bytes

    @reads_untrusted("a chat stream")
    def feed_body(self, chunk: bytes) -> list[StreamEvent]:
        self._bounds.body(len(chunk), lambda: self.partial, self.provenance.server_url)
        if self._json_body:
            self._body += chunk
            return []
        return [event for sse in self._sse.feed(chunk) for event in self.feed(sse)]

    @reads_untrusted("a chat stream")
    def end_body(self) -> list[StreamEvent]:
        if self._json_body:
            return self.events_from_json(bytes(self._body))
        events = [event for sse in self._sse.flush() for event in self.feed(sse)]
        if not self.done:
            raise _cut_short(self.partial, self.provenance.server_url)
        return events

    @reads_untrusted("a chat stream event")
    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """The events of one SSE event (for callers that decode SSE themselves)."""
        if self.done:
            return []
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        chunk = _event_json(event, "A stream event")
        if not isinstance(chunk, Mapping):
            raise ResponseFormatError(f"A stream event is not a JSON object: {event.data[:80]!r}")
        if "error" in chunk and "choices" not in chunk:
            raise _stream_error(chunk, self.text, self.provenance.server_url)
        self._id = self._id or _text_or_none(chunk.get("id"))
        self._model = self._model or _text_or_none(chunk.get("model"))
        modality = chunk.get("modality")
        if isinstance(chunk.get("usage"), Mapping) and (modality != "audio" or not self._usage):
            self._usage = dict(chunk["usage"])
        if isinstance(chunk.get("metrics"), Mapping) and chunk["metrics"]:
            self._metrics = dict(chunk["metrics"])
        events: list[StreamEvent] = []
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, Mapping):
                continue
            if choice.get("finish_reason"):
                self._finish_reason = str(choice["finish_reason"])
            delta: Mapping[str, Any] = choice["delta"] if isinstance(choice.get("delta"), Mapping) else {}
            content = delta.get("content")
            if isinstance(content, list):
                for image in chat_images(content, self.provenance):
                    image = dataclasses.replace(image, index=len(self._images))
                    self._images.append(image)
                    events.append(ImageDelta(image))
            elif isinstance(content, str) and content:
                if modality == "audio" or "audio_metadata" in choice:
                    events.append(self._audio(content, choice.get("audio_metadata")))
                else:
                    self._bounds.more_text(len(content), lambda: self.text, self.provenance.server_url)
                    self._text.append(content)
                    events.append(TextDelta(content))
        return events

    def _audio(self, encoded: str, metadata: Any) -> AudioDelta:
        raw = decode_base64(encoded, "a streamed audio chunk")
        if raw[:4] == b"RIFF":
            info = parse_wav(raw)
            self._sample_rate, self._channels = info.sample_rate, info.channels
            self._pcm.append(info.pcm)
            return AudioDelta(info.pcm, info.sample_rate, info.channels, raw)
        self._raw_audio.append(raw)
        rate = _whole(metadata.get("sample_rate_hz")) if isinstance(metadata, Mapping) else None
        return AudioDelta(None, rate, 1, raw)

    def events_from_json(self, content: bytes) -> list[StreamEvent]:
        """A server that ignores ``stream`` (pure diffusion) answers one JSON body: replay it as events."""
        result = parse_chat_json(content, self.provenance)
        self._final = result
        self.done = True
        events: list[StreamEvent] = [TextDelta(result.text)] if result.text else []
        if result.audio is not None:
            pcm = parse_wav(result.audio).pcm if result.audio[:4] == b"RIFF" else None
            events.append(AudioDelta(pcm, result.sample_rate, 1, result.audio))
        events += [ImageDelta(image) for image in result.images]
        return events

    @reads_untrusted("a chat stream")
    def result(self, timings: Mapping[str, float] | None = None) -> ChatResult:
        if self._final is not None:
            final = self._final.provenance
            return dataclasses.replace(self._final, provenance=dataclasses.replace(final, timings=dict(timings or final.timings)))
        audio = self.audio
        frames = sum(len(p) for p in self._pcm) // (2 * self._channels) if self._pcm else None
        provenance = answered_by(self.provenance, self._model)
        return ChatResult(
            text=self.text,
            audio=audio,
            audio_format=("wav" if self._pcm else self.provenance.params.get("audio", {}).get("format")) if audio else None,
            sample_rate=self._sample_rate,
            audio_frames=frames,
            images=tuple(self._images),
            finish_reason=self._finish_reason,
            id=self._id,
            provenance=dataclasses.replace(provenance, timings=dict(timings or provenance.timings)),
            usage=self._usage,
            metrics=self._metrics,
        )


class SpeechStreamState:
    """Accumulates streamed speech: raw bytes (``mode="audio"``) or SSE ``speech.audio.*`` events."""

    def __init__(self, provenance: Provenance, response_format: str, mode: str,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.provenance = provenance
        self.format = response_format
        self.mode = mode
        self.done = False
        self._sse = SSEDecoder(limits.max_line_bytes) if mode == "sse" else None
        self._bounds = StreamBounds(limits)
        self.sample_rate = int(provenance.params.get("sample_rate") or DEFAULT_PCM_RATE)
        self.channels = 1
        self.usage: dict[str, Any] = {}
        self._pcm: list[bytes] = []
        self._pending = b""  # bytes before the WAV header is complete, or half a sample
        self._header_seen = response_format != "wav"

    @property
    def pcm(self) -> bytes:
        return b"".join(self._pcm)

    @property
    def audio(self) -> bytes:
        """What arrived so far as one file in the requested format (WAV with real sizes, or raw PCM)."""
        return pcm_to_wav(self.pcm, self.sample_rate, self.channels) if self.format == "wav" else self.pcm

    @property
    def text(self) -> str:
        return ""

    @property
    def partial(self) -> bytes:
        return self.audio

    def bound(self, limits: Limits) -> None:
        self._bounds.limits = limits
        if self._sse is not None:
            self._sse.max_line_bytes = limits.max_line_bytes

    @reads_untrusted("a speech stream")
    def feed_body(self, chunk: bytes) -> list[StreamEvent]:
        self._bounds.body(len(chunk), lambda: self.partial, self.provenance.server_url)
        if self._sse is not None:
            return [event for sse in self._sse.feed(chunk) for event in self.feed(sse)]
        return self._raw_audio(chunk)

    @reads_untrusted("a speech stream")
    def end_body(self) -> list[StreamEvent]:
        if self._sse is None:
            return []  # a raw stream has no final event: its end is the end of the body
        events = [event for sse in self._sse.flush() for event in self.feed(sse)]
        if not self.done:
            raise _cut_short(self.partial, self.provenance.server_url)
        return events

    def _raw_audio(self, chunk: bytes) -> list[StreamEvent]:
        data = self._pending + chunk
        if not self._header_seen:
            if len(data) < WAV_HEADER_SIZE:
                self._pending = data
                return []
            info = parse_wav(data)
            self.sample_rate, self.channels = info.sample_rate, info.channels
            self._header_seen = True
            data = info.pcm
        return self._pcm_piece(data)

    def _pcm_piece(self, data: bytes) -> list[StreamEvent]:
        width = 2 * self.channels
        usable = len(data) - len(data) % width
        self._pending = data[usable:]
        if not usable:
            return []
        pcm = data[:usable]
        self._pcm.append(pcm)
        return [AudioDelta(pcm, self.sample_rate, self.channels, pcm)]

    @reads_untrusted("a speech stream event")
    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        """The events of one SSE event (``mode="sse"``; for callers that decode SSE themselves)."""
        if event.data.strip() == "[DONE]":
            self.done = True
            return []
        decoded = _event_json(event, "speech stream event")
        payload: Mapping[str, Any] = decoded if isinstance(decoded, Mapping) else {}
        kind = payload.get("type") or event.event
        if kind == "speech.audio.error" or "error" in payload:
            raise _stream_error(payload, self.audio, self.provenance.server_url)
        if kind == "speech.audio.done":
            self.done = True
            if isinstance(payload.get("usage"), Mapping):
                self.usage = dict(payload["usage"])
            return []
        if kind != "speech.audio.delta":
            return []
        raw = decode_base64(field_str(payload, "audio"), "streamed speech")
        if raw[:4] == b"RIFF":
            info = parse_wav(raw)
            self.sample_rate, self.channels = info.sample_rate, info.channels
            self._header_seen = True
            raw = info.pcm
        return self._pcm_piece(self._pending + raw)

    @reads_untrusted("a speech stream")
    def result(self, timings: Mapping[str, float] | None = None) -> SpeechResult:
        return SpeechResult(
            audio=self.audio,
            format=self.format,
            sample_rate=self.sample_rate,
            channels=self.channels,
            frames=len(self.pcm) // (2 * self.channels),
            provenance=dataclasses.replace(self.provenance, timings=dict(timings or self.provenance.timings)),
            usage=self.usage,
        )


def field_str(payload: Any, key: str) -> str:
    value = payload.get(key) if isinstance(payload, Mapping) else None
    if not isinstance(value, str):
        raise ResponseFormatError(f"A speech stream event has no {key!r} string.")
    return value
