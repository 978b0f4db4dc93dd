"""Hypothesis over every response parser and the SSE / WAV / body / stream state machines (issue 14.14).

The rule: whatever a server sends, only ``vomni_nb.errors`` types escape, and none of them by the
parsers' last guard (``protocol.untrusted.reads_untrusted``): a guarded error means a parser met a
shape it does not check, and the test fails so the check gets written.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vomni_nb.errors import APIStatusError, ResponseFormatError, VomniError
from vomni_nb.protocol.batch import parse_speech_batch
from vomni_nb.protocol.body import BoundedBody
from vomni_nb.protocol.dataurl import decode_base64, decode_data_url
from vomni_nb.protocol.limits import Limits
from vomni_nb.protocol.mp4 import mp4_info
from vomni_nb.protocol.parse import (
    chat_images,
    image_info,
    parse_chat_json,
    parse_images_file,
    parse_images_json,
    parse_models,
    parse_speech,
    parse_video_job,
    video_result,
)
from vomni_nb.protocol.retry import parse_retry_after
from vomni_nb.protocol.sse import SSEDecoder, SSEEvent
from vomni_nb.protocol.status import error_from_response
from vomni_nb.protocol.streaming import ChatStreamState, SpeechStreamState
from vomni_nb.protocol.untrusted import load_json, was_guarded
from vomni_nb.protocol.wav import join_wav_chunks, parse_wav, pcm_to_wav
from vomni_nb.provenance import Provenance

PROVENANCE = Provenance(server_url="http://sim", model="m", params={"size": "8x4", "audio": {"format": "wav"}},
                        prompt="p")


def only_ours(call: Callable[[], Any]) -> Any:
    """Run ``call``; a foreign exception, or one of ours from the last guard, fails the test."""
    try:
        return call()
    except VomniError as error:
        assert not was_guarded(error), f"the guard caught what a check should have: {error!r} from {error.__cause__!r}"
        return error


def _png(width: int = 2, height: int = 2) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()
B64_PNG = base64.b64encode(PNG).decode()

# Values a hostile body may put anywhere: wrong types, huge numbers, real media, bombs.
GIF_BOMB = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00,\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x02\x00;"
PNG_BOMB = PNG[:16] + struct.pack(">II", 100_000, 100_000) + PNG[24:]
WAV = pcm_to_wav(b"\x01\x00" * 8, 24000)
WAV_BOMB = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, 0xFFFF, 0xFFFFFFFF,
                       0xFFFFFFFF, 0xFFFF, 16, b"data", 0xFFFFFFFF) + b"\x00" * 8
media = st.sampled_from([B64_PNG, base64.b64encode(GIF_BOMB).decode(), base64.b64encode(PNG_BOMB).decode(),
                         base64.b64encode(WAV).decode(), base64.b64encode(WAV_BOMB).decode(), "!!", "",
                         "data:image/png;base64," + B64_PNG, "data:image/png;base64,@@", "data:,x"])
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8)
           | media)
KEYS = ["data", "choices", "message", "content", "b64_json", "audio", "id", "status", "error", "type", "image_url",
        "url", "delta", "modality", "audio_metadata", "sample_rate_hz", "frame_count", "format", "finish_reason",
        "usage", "metrics", "model", "transcript", "text", "message", "code", "param", "detail", "loc", "msg",
        "size", "fps", "num_frames", "duration_s", "voices", "version", "index", "results", "audio_data"]
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5), max_leaves=16)
bodies = st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64),
                   st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth))


@settings(max_examples=300)
@given(bodies, st.sampled_from(["wav", "pcm", "mp3"]))
def test_every_body_parser_raises_only_our_errors(content: bytes, speech_format: str) -> None:
    only_ours(lambda: parse_images_json(content, PROVENANCE))
    only_ours(lambda: parse_chat_json(content, PROVENANCE))
    only_ours(lambda: parse_speech(content, {}, PROVENANCE, speech_format))
    only_ours(lambda: parse_video_job(content))
    only_ours(lambda: parse_models(content))
    only_ours(lambda: load_json(content))
    only_ours(lambda: parse_speech_batch(content, [PROVENANCE] * 2, [speech_format] * 2))


@settings(max_examples=200)
@given(json_values)
def test_parsers_of_decoded_values_raise_only_our_errors(value: Any) -> None:
    only_ours(lambda: chat_images(value, PROVENANCE))
    job = value if isinstance(value, dict) else {"id": "j", "status": "completed", "size": value, "fps": value}
    result = only_ours(lambda: video_result(b"mp4", job, PROVENANCE))
    if not isinstance(result, VomniError):
        assert result.fps is None or isinstance(result.fps, (int, float))
        assert result.num_frames is None or isinstance(result.num_frames, int)
        repr(result)


@settings(max_examples=200)
@given(st.lists(st.fixed_dictionaries({}, optional={"index": scalars | st.lists(scalars, max_size=2),
                                                    "status": st.sampled_from(["success", "error", None]),
                                                    "error": json_values, "audio_data": media, "usage": json_values}),
                max_size=4))
def test_speech_batch_answers_raise_only_our_errors(results: list[dict[str, Any]]) -> None:
    # Shaped like the batch route's answer, so the fuzzing reaches each item's checks, not only the envelope.
    out = only_ours(lambda: parse_speech_batch(json.dumps({"results": results}).encode(), [PROVENANCE] * 3,
                                               ["wav", "pcm", "mp3"]))
    if not isinstance(out, VomniError):
        assert len(out) == 3


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


@settings(max_examples=300)
@given(st.binary(max_size=96), st.sampled_from([b"moov", b"trak", b"tkhd", b"mdia", b"mdhd", b"minf", b"stbl",
                                                  b"stsz", b"mvhd"]), st.integers(0, 3))
def test_mp4_reading_never_raises(tail: bytes, kind: bytes, depth: int) -> None:
    # Boxes nested as the reader walks them, with a fuzzed payload at the bottom: whatever the sizes claim,
    # mp4_info says what it could read and never raises (a video's facts come from a file the server made).
    data = _box(kind, tail)
    for outer in (b"stbl", b"minf", b"mdia", b"trak", b"moov")[4 - depth:]:
        data = _box(outer, data)
    info = mp4_info(data)
    assert info.width is None or isinstance(info.width, int)
    only_ours(lambda: video_result(data, {"id": "j"}, PROVENANCE))


@settings(max_examples=300)
@given(st.integers(100, 599), bodies, st.dictionaries(st.sampled_from(["retry-after", "location", "x"]),
                                                      st.text(max_size=30), max_size=3))
def test_error_answers_always_make_a_status_error(status: int, content: bytes, headers: dict[str, str]) -> None:
    error = error_from_response(status, content, headers, url="http://h/v1/x", secrets=("k",))
    assert isinstance(error, APIStatusError) and error.status_code == status
    str(error), repr(error.body)
    only_ours(lambda: parse_retry_after(headers.get("retry-after")))


@settings(max_examples=200)
@given(st.binary(max_size=80) | st.sampled_from([GIF_BOMB, PNG_BOMB, PNG, PNG[:30], b"PK\x03\x04" + b"\x00" * 40]))
def test_images_and_archives_raise_only_our_errors(data: bytes) -> None:
    only_ours(lambda: image_info(data))
    only_ours(lambda: parse_images_file(data, "image/png", PROVENANCE))
    only_ours(lambda: parse_images_file(data, "application/zip", PROVENANCE))


def _zip_bomb() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("image_0.png", b"\0" * (4 << 20))
    return buffer.getvalue()


def test_a_zip_bomb_is_refused_by_its_declared_sizes() -> None:
    error = only_ours(lambda: parse_images_file(_zip_bomb(), "application/zip", PROVENANCE, max_bytes=1 << 20))
    assert isinstance(error, ResponseFormatError) and "expands past 1 MiB" in str(error)


# WAV headers with every field drawn from the extremes (0, 1, 0xFFFF..., random).
field32 = st.sampled_from([0, 1, 16, 44, 0xFFFFFFFF, 0x7FFFFFFF]) | st.integers(0, 2**32 - 1)
field16 = st.sampled_from([0, 1, 2, 8, 16, 24, 32, 0xFFFF]) | st.integers(0, 2**16 - 1)


@settings(max_examples=300)
@given(field32, field16, field16, field32, field32, field16, field16, field32, st.binary(max_size=40),
       st.sampled_from([b"fmt ", b"data", b"LIST"]), st.sampled_from([b"data", b"fmt ", b"junk"]))
def test_wav_headers_with_hostile_fields(riff: int, fmt_code: int, channels: int, rate: int, byte_rate: int,
                                         block: int, bits: int, data_size: int, tail: bytes, first: bytes,
                                         second: bytes) -> None:
    wav = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", first, 16, fmt_code, channels, rate, byte_rate,
                      block, bits, second, data_size) + tail
    info = only_ours(lambda: parse_wav(wav))
    if not isinstance(info, VomniError):
        rebuilt = pcm_to_wav(info.pcm, info.sample_rate, info.channels, info.bits_per_sample)
        assert parse_wav(rebuilt).pcm == info.pcm
        assert info.duration_s >= 0
    only_ours(lambda: join_wav_chunks([wav, WAV]))
    only_ours(lambda: parse_speech(wav, {}, PROVENANCE, "wav"))


@given(st.text(max_size=40) | st.integers() | st.none())
def test_data_urls_and_base64_raise_only_our_errors(text: Any) -> None:
    only_ours(lambda: decode_data_url(text))
    only_ours(lambda: decode_base64(text))


# ---- the byte-level machines: SSE, bodies, stream states ------------------------------------------


def _split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(raw) + 1) for c in cuts}) + [len(raw)]
    pieces, start = [], 0
    for point in points:
        pieces.append(raw[start:point])
        start = point
    return pieces


@settings(max_examples=300)
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=6), st.integers(1, 64))
def test_the_sse_decoder_takes_any_bytes_in_any_split(raw: bytes, cuts: list[int], max_line: int) -> None:
    decoder = SSEDecoder(max_line)
    for piece in _split(raw, cuts):
        if isinstance(only_ours(lambda: decoder.feed(piece)), VomniError):
            return
    only_ours(decoder.flush)
    unbounded = SSEDecoder()
    events = [event for piece in _split(raw, cuts) for event in unbounded.feed(piece)] + unbounded.flush()
    assert all(isinstance(event.data, str) for event in events)


chunk_dicts = st.fixed_dictionaries(
    {"choices": st.lists(st.fixed_dictionaries({"delta": st.dictionaries(st.sampled_from(["content", "role"]),
                                                                           json_values, max_size=2)},
                                               optional={"finish_reason": json_values, "audio_metadata": json_values,
                                                         "index": json_values}) | json_values, max_size=2)
     | json_values},
    optional={"modality": st.sampled_from(["text", "audio", "image"]) | json_values, "id": json_values,
              "model": json_values, "usage": json_values, "metrics": json_values, "error": json_values})
speech_dicts = st.fixed_dictionaries(
    {"type": st.sampled_from(["speech.audio.delta", "speech.audio.done", "speech.audio.error"]) | json_values},
    optional={"audio": media | json_values, "usage": json_values, "error": json_values})


def _sse(payloads: list[Any]) -> bytes:
    return b"".join(b"data: " + (p if isinstance(p, bytes) else json.dumps(p).encode()) + b"\n\n" for p in payloads)


def _drive(state: Any, pieces: list[bytes]) -> None:
    for piece in pieces:
        if isinstance(only_ours(lambda: state.feed_body(piece)), VomniError):
            break
    else:
        only_ours(state.end_body)
    for read in (lambda: state.text, lambda: state.audio, lambda: state.partial, state.result):
        only_ours(read)


@settings(max_examples=300)
@given(st.lists(chunk_dicts | st.sampled_from([b"[DONE]", b"{", b"[1]", b'"x"']), max_size=5),
       st.lists(st.integers(0, 4000), max_size=4), st.sampled_from(["text/event-stream", "application/json"]))
def test_the_chat_stream_state_takes_any_events(payloads: list[Any], cuts: list[int], content_type: str) -> None:
    raw = _sse(payloads) if content_type == "text/event-stream" else json.dumps(payloads, default=bytes.decode).encode()
    _drive(ChatStreamState(PROVENANCE, content_type, Limits(max_line_bytes=1 << 20)), _split(raw, cuts))


@settings(max_examples=300)
@given(st.lists(speech_dicts | st.sampled_from([b"[DONE]", b"{", b"null"]), max_size=5),
       st.lists(st.integers(0, 4000), max_size=4), st.sampled_from(["wav", "pcm"]))
def test_the_sse_speech_state_takes_any_events(payloads: list[Any], cuts: list[int], fmt: str) -> None:
    _drive(SpeechStreamState(PROVENANCE, fmt, "sse"), _split(_sse(payloads), cuts))


@settings(max_examples=300)
@given(st.binary(max_size=200) | st.sampled_from([WAV, WAV_BOMB, WAV[:43], WAV[:50]]),
       st.lists(st.integers(0, 300), max_size=5), st.sampled_from(["wav", "pcm"]))
def test_the_raw_speech_state_takes_any_bytes(raw: bytes, cuts: list[int], fmt: str) -> None:
    _drive(SpeechStreamState(PROVENANCE, fmt, "audio"), _split(raw, cuts))


@settings(max_examples=200)
@given(st.binary(max_size=200), st.sampled_from(["gzip", "deflate", "identity", "br", "gzip, gzip", ""]),
       st.lists(st.integers(0, 300), max_size=4), st.booleans())
def test_bodies_decode_or_refuse(raw: bytes, encoding: str, cuts: list[int], compress: bool) -> None:
    if compress and encoding == "gzip":
        raw = gzip.compress(raw)
    elif compress and encoding == "deflate":
        raw = zlib.compress(raw)
    body = only_ours(lambda: BoundedBody({"content-encoding": encoding}, 4096, what="The answer", setting="L"))
    if isinstance(body, VomniError):
        return
    for piece in _split(raw, cuts):
        if isinstance(only_ours(lambda: body.feed(piece)), VomniError):
            return
    only_ours(body.end)


def test_sse_events_fed_directly_take_any_payload() -> None:
    # The states' feed() is public (for callers that decode SSE themselves): odd payloads stay ours.
    for payload in ("[]", "null", '{"choices": 5}', '{"error": []}', '{"type": "speech.audio.done", "usage": 3}',
                    '["speech.audio.done"]', '{"error": {"message": {"deep": 1}, "code": {"x": 1}}}'):
        only_ours(lambda: ChatStreamState(PROVENANCE).feed(SSEEvent(payload)))
        only_ours(lambda: SpeechStreamState(PROVENANCE, "pcm", "sse").feed(SSEEvent(payload, "speech.audio.done")))
