"""Stream state: chat deltas (text, audio as joined PCM, images) and the speech stream modes."""

from __future__ import annotations

import base64
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from vomni_nb.errors import ResponseFormatError, StreamError
from vomni_nb.provenance import Provenance
from vomni_nb.protocol.sse import SSEEvent
from vomni_nb.protocol.streaming import AudioDelta, ChatStreamState, ImageDelta, SpeechStreamState, TextDelta
from vomni_nb.protocol.wav import parse_wav, pcm_to_wav, wav_header


def _event(payload: object) -> SSEEvent:
    return SSEEvent(json.dumps(payload))


def _chunk(delta: dict, modality: str | None = "text", **choice: object) -> SSEEvent:  # type: ignore[type-arg]
    body: dict[str, object] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
                               "choices": [{"index": 0, "delta": delta, "finish_reason": None, **choice}]}
    if modality:
        body["modality"] = modality
    return _event(body)


def test_chat_text_audio_and_images() -> None:
    state = ChatStreamState(Provenance(server_url="http://sim", prompt="hi"))
    assert state.feed(_chunk({"role": "assistant", "content": ""})) == []
    assert state.feed(_chunk({"content": "Hel"})) == [TextDelta("Hel")]
    assert state.feed(_chunk({"content": "lo"}, finish_reason="stop")) == [TextDelta("lo")]
    first, second = b"\x01\x00" * 10, b"\x02\x00" * 5
    for pcm in (first, second):
        (delta,) = state.feed(_chunk({"role": "assistant", "content": base64.b64encode(pcm_to_wav(pcm, 24000)).decode()},
                                     modality="audio", audio_metadata={"format": "wav", "sample_rate_hz": 24000}))
        assert isinstance(delta, AudioDelta) and delta.pcm == pcm and delta.sample_rate == 24000
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    (image,) = state.feed(_chunk({"content": [{"type": "image_url", "image_url": {"url": url}}]}, modality="image"))
    assert isinstance(image, ImageDelta) and image.image.width == 4
    state.feed(_event({"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}))
    state.feed(SSEEvent("[DONE]"))
    assert state.done and state.feed(_chunk({"content": "late"})) == []
    result = state.result({"total_s": 1.0})
    assert result.text == "Hello" and result.finish_reason == "stop" and result.usage["completion_tokens"] == 2
    assert result.audio is not None and parse_wav(result.audio).pcm == first + second
    assert result.audio_frames == 15 and result.sample_rate == 24000 and len(result.images) == 1


def test_chat_error_event_carries_partial_text() -> None:
    state = ChatStreamState(Provenance())
    state.feed(_chunk({"content": "partial "}))
    with pytest.raises(StreamError, match="engine died") as caught:
        state.feed(_event({"error": {"message": "engine died", "type": "InternalServerError", "param": None, "code": 500}}))
    assert caught.value.partial == "partial " and caught.value.error_type == "InternalServerError"
    with pytest.raises(ResponseFormatError):
        ChatStreamState(Provenance()).feed(SSEEvent("{not json"))
    with pytest.raises(ResponseFormatError):
        ChatStreamState(Provenance()).feed(SSEEvent("[1]"))


@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6), st.sampled_from(["wav", "pcm"]))
def test_raw_speech_stream_any_split(pcm: bytes, cuts: list[int], fmt: str) -> None:
    pcm = pcm[: len(pcm) - len(pcm) % 2]
    raw = (wav_header(16000) if fmt == "wav" else b"") + pcm
    state = SpeechStreamState(Provenance(params={"sample_rate": 16000}), fmt, "audio")
    pieces: list[bytes] = []
    start = 0
    for cut in sorted(c % (len(raw) + 1) for c in cuts) + [len(raw)]:
        pieces += [e.pcm for e in state.feed_body(raw[start:cut]) if isinstance(e, AudioDelta) and e.pcm]
        start = cut
    assert b"".join(pieces) == pcm and all(len(p) % 2 == 0 for p in pieces)
    result = state.result()
    assert result.sample_rate == 16000 and result.frames == len(pcm) // 2
    assert (parse_wav(result.audio).pcm if fmt == "wav" else result.audio) == pcm


def test_sse_speech_stream_header_first_then_done_and_errors() -> None:
    state = SpeechStreamState(Provenance(prompt="hi"), "wav", "sse")
    header = base64.b64encode(wav_header(22050)).decode()
    assert state.feed(SSEEvent(json.dumps({"type": "speech.audio.delta", "audio": header}), "speech.audio.delta")) == []
    body = base64.b64encode(b"\x05\x00" * 4).decode()
    (delta,) = state.feed(SSEEvent(json.dumps({"type": "speech.audio.delta", "audio": body})))
    assert isinstance(delta, AudioDelta) and delta.sample_rate == 22050
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    state.feed(SSEEvent(json.dumps({"type": "speech.audio.done", "usage": usage}), "speech.audio.done"))
    assert state.done and state.result().usage == usage and state.result().frames == 4
    failing = SpeechStreamState(Provenance(), "pcm", "sse")
    failing.feed(SSEEvent(json.dumps({"type": "speech.audio.delta", "audio": body})))
    error = {"type": "speech.audio.error", "error": {"message": "talker crashed", "type": "server_error",
                                                     "param": None, "code": 500, "partial_audio": True}}
    with pytest.raises(StreamError, match="talker crashed") as caught:
        failing.feed(SSEEvent(json.dumps(error), "speech.audio.error"))
    assert caught.value.partial == b"\x05\x00" * 4


def test_stream_repr_says_what_to_do_then_shows_the_result(tts_server) -> None:  # type: ignore[no-untyped-def]
    from vomni_nb import OmniClient

    with OmniClient(tts_server.url) as client:
        stream = client.speak_stream("Hello there.", response_format="pcm")
        assert repr(stream) == f"SpeechStream({tts_server.url}, open: iterate it for events, or call .finish() for the result)"
        result = stream.finish()
    assert repr(stream).startswith(f"SpeechStream({tts_server.url}, finished: SpeechResult(pcm, {result.duration_s:.2f}s")


def test_a_stream_closed_early_says_so_and_frees_its_connection(start_sim) -> None:  # type: ignore[no-untyped-def]
    # finish() after the reader stopped the stream used to blame the server (issue 7 item 18).
    from vomni_nb import OmniClient
    from tests.support.sims import OMNI_MODEL

    sim = start_sim(OMNI_MODEL, "--tokens-per-second", "50")
    with OmniClient(sim.url) as client:
        stream = client.chat_stream("Tell me a long story", modalities=["text"])
        first = next(iter(stream))
        assert isinstance(first, TextDelta)
        stream.close()
        assert stream._response.is_closed  # the generator's finally ran: the server aborts the request
        with pytest.raises(StreamError, match="closed before it finished \\(by this client, not the server\\)") as caught:
            stream.finish()
        assert caught.value.partial == first.text
        interrupted = client.chat_stream("Tell me a long story", modalities=["text"])
        with pytest.raises(KeyboardInterrupt):
            for _ in interrupted:
                raise KeyboardInterrupt  # as Ctrl-C in the cell's loop body would
        interrupted.close()
        with pytest.raises(StreamError, match="closed before it finished"):
            interrupted.finish()
    assert sim.wait_for_log("aborted.")


def test_compressed_audio_chunks_and_the_stream_byte_limit() -> None:
    from vomni_nb.protocol.limits import Limits

    state = ChatStreamState(Provenance(params={"audio": {"format": "mp3"}}))
    (delta,) = state.feed(_chunk({"content": base64.b64encode(b"ID3-not-a-wav").decode()}, modality="audio",
                                 audio_metadata={"format": "mp3", "sample_rate_hz": "fast"}))
    assert isinstance(delta, AudioDelta) and delta.pcm is None and delta.sample_rate is None
    assert state.audio == b"ID3-not-a-wav"
    bounded = SpeechStreamState(Provenance(), "pcm", "audio", Limits(max_stream_bytes=8))
    bounded.feed_body(b"\x01\x00" * 4)
    with pytest.raises(StreamError, match="more than 8 bytes.*Limits.max_stream_bytes") as caught:
        bounded.feed_body(b"\x02\x00")
    assert caught.value.partial == b"\x01\x00" * 4


def test_both_stream_kinds_through_every_accessor(image_server, tts_server) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from vomni_nb import AsyncOmniClient, OmniClient

    with OmniClient(tts_server.url) as client:
        stream = client.speak_stream("Hello.", response_format="pcm")
        assert stream.response_headers["content-type"].startswith("audio/")
        first = next(stream)
        assert isinstance(first, AudioDelta) and stream.result.frames > 0  # .result finishes the stream

    async def main() -> None:
        # A pure-diffusion server answers a streamed chat with one JSON body: its events come at the end.
        async with AsyncOmniClient(image_server.url) as client:
            stream = await client.chat_stream("a red fox", extra={"size": "64x64"})
            events = [event async for event in stream]
            assert [type(e) for e in events] == [ImageDelta] and (await stream.finish()).images
            cut = await client.chat_stream("a red fox", extra={"size": "64x64"})
            await cut.aclose()
            with pytest.raises(StreamError, match="closed before it finished"):
                await cut.finish()
        async with AsyncOmniClient(tts_server.url) as client:
            raw = await client.speak_stream("Hello.", response_format="pcm")
            assert isinstance(await raw.__anext__(), AudioDelta)
            await raw.aclose()

    asyncio.run(main())
