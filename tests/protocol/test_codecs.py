"""SSE decoding, WAV joining and data URLs, with hypothesis over splits and line endings."""

from __future__ import annotations

import base64
import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vomni_nb.errors import ResponseFormatError
from vomni_nb.protocol.dataurl import decode_base64, decode_data_url, encode_data_url
from vomni_nb.protocol.sse import SSEDecoder, SSEEvent
from vomni_nb.protocol.wav import STREAMING_SIZE, join_wav_chunks, parse_wav, pcm_to_wav, wav_header

# Event payload lines: no CR/LF inside a line (that is what splits lines).
line_text = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=30)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.", min_size=1, max_size=12)
events = st.lists(st.tuples(st.one_of(st.none(), names), st.lists(line_text, min_size=1, max_size=3)), max_size=6)


def _encode(items: list[tuple[str | None, list[str]]], newline: str, comments: bool) -> bytes:
    out = []
    for name, data_lines in items:
        if comments:
            out.append(": keep-alive" + newline)
        if name is not None:
            out.append(f"event: {name}{newline}")
        out.extend(f"data: {line}{newline}" for line in data_lines)
        out.append(newline)
    return "".join(out).encode("utf-8")


def _decode_in_pieces(raw: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    found: list[SSEEvent] = []
    start = 0
    for cut in sorted(set(c % (len(raw) + 1) for c in cuts)) + [len(raw)]:
        found += decoder.feed(raw[start:cut])
        start = cut
    return found + decoder.flush()


@given(events, st.sampled_from(["\n", "\r\n", "\r"]), st.booleans(), st.lists(st.integers(0, 10_000), max_size=8))
def test_sse_events_survive_any_split_and_line_ending(items, newline, comments, cuts) -> None:  # type: ignore[no-untyped-def]
    raw = _encode(items, newline, comments)
    decoded = _decode_in_pieces(raw, cuts)
    assert [(e.event, e.data) for e in decoded] == [(name or "message", "\n".join(lines)) for name, lines in items]


def test_sse_details() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data:no-space\r") == []
    # The LF of a CRLF arriving in the next chunk must not end a second (empty) line.
    assert decoder.feed(b"\n\r\n") == [SSEEvent(data="no-space")]
    assert decoder.feed(b"data: a\n\ndata: [DONE]\n\n") == [SSEEvent("a"), SSEEvent("[DONE]")]
    # An event cut off by the end of the stream is dropped, as the spec says.
    assert decoder.feed(b"data: partial\n") == [] and decoder.flush() == []
    assert SSEDecoder().feed(b"id: 7\nevent: x\ndata: y\n\n") == [SSEEvent("y", "x", "7")]


pcm_bytes = st.binary(max_size=64).map(lambda b: b[: len(b) - len(b) % 2])


@given(st.lists(pcm_bytes, min_size=1, max_size=6), st.sampled_from([8000, 16000, 24000, 48000]))
def test_joined_wav_chunks_hold_the_concatenated_pcm(pieces: list[bytes], rate: int) -> None:
    joined = join_wav_chunks([pcm_to_wav(piece, rate) for piece in pieces])
    assert joined.pcm == b"".join(pieces) and joined.sample_rate == rate and joined.channels == 1
    assert joined.frames == len(joined.pcm) // 2
    again = parse_wav(pcm_to_wav(joined.pcm, rate))
    assert again.pcm == joined.pcm


@given(pcm_bytes)
def test_streaming_header_means_read_to_the_end(pcm: bytes) -> None:
    header = wav_header(24000)
    assert len(header) == 44 and struct.unpack_from("<I", header, 40)[0] == STREAMING_SIZE
    assert parse_wav(header + pcm).pcm == pcm


def test_wav_errors() -> None:
    with pytest.raises(ResponseFormatError, match="WAV"):
        parse_wav(b"<html>")
    with pytest.raises(ResponseFormatError, match="no data chunk|without a data chunk"):
        parse_wav(wav_header(8000, data_size=0)[:36])
    with pytest.raises(ResponseFormatError, match="different formats"):
        join_wav_chunks([pcm_to_wav(b"\0\0", 8000), pcm_to_wav(b"\0\0", 16000)])
    with pytest.raises(ResponseFormatError):
        join_wav_chunks([])
    # Extra chunks (LIST) before data are skipped.
    info = wav_header(8000, data_size=2)
    with_list = info[:36] + b"LIST\x04\x00\x00\x00abcd" + info[36:] + b"\x01\x02"
    assert parse_wav(with_list[:4] + with_list[4:]).pcm == b"\x01\x02"


@given(st.binary(max_size=200), st.sampled_from(["image/png", "audio/wav", "application/octet-stream"]))
def test_data_urls_round_trip(data: bytes, mime: str) -> None:
    assert decode_data_url(encode_data_url(data, mime)) == (mime, data)


def test_data_url_errors_and_plain_payloads() -> None:
    assert decode_data_url("data:,hello%20world") == ("text/plain", b"hello world")
    for bad in ("http://x/y.png", "data:image/png;base64", "data:image/png;base64,@@@", 7):
        with pytest.raises(ResponseFormatError):
            decode_data_url(bad)  # type: ignore[arg-type]
    with pytest.raises(ResponseFormatError, match="not valid base64"):
        decode_base64("abc")
    assert decode_base64(base64.b64encode(b"ok").decode()) == b"ok"


def _line_cpu(size: int) -> float:
    """CPU seconds to decode one ``size``-byte SSE line fed in 64 KB pieces (the least of five runs)."""
    piece = b"a" * 65536
    runs = []
    for _ in range(5):
        decoder = SSEDecoder(max_line_bytes=64 << 20)
        started = time.process_time()
        decoder.feed(b"data: ")
        for _ in range(size // len(piece)):
            decoder.feed(piece)
        (event,) = decoder.feed(b"\n\n")
        runs.append(time.process_time() - started)
        assert len(event.data) == size
    return min(runs)


def test_a_20_mb_line_costs_about_ten_times_a_2_mb_line_not_a_hundred() -> None:
    # Issue 14.13: a buffer rebuilt and rescanned for every piece made one long line cost its square.
    # A ratio of CPU times is scale-free (the absolute figure is in benchmarks/cancel_latency.py): linear
    # parsing measures 10-25 here, a buffer rebuilt per piece 200-270. Lines stay under 32 MB, where glibc
    # stops reusing freed memory: past it every run pays fresh page faults, and a 5 MB : 50 MB ratio read
    # up to 70 with linear parsing.
    assert _line_cpu(20 << 20) < 60 * _line_cpu(2 << 20)


def test_lines_and_events_past_the_limit_are_refused() -> None:
    with pytest.raises(ResponseFormatError, match="longer than 16 bytes"):
        SSEDecoder(max_line_bytes=16).feed(b"data: " + b"x" * 20)
    decoder = SSEDecoder(max_line_bytes=16)
    decoder.feed(b"data: 0123456789\n")  # one line fits; the event's data keeps growing
    with pytest.raises(ResponseFormatError, match="Limits.max_line_bytes"):
        decoder.feed(b"data: 0123456789\n")
    # Just under the limit, split anywhere, a line still decodes.
    assert _decode_in_pieces(b"data: 0123456789\n\n", [3, 9]) == [SSEEvent("0123456789")]


def test_sse_without_a_trailing_newline_or_with_keep_alives_only() -> None:
    # Issue 16.11: the last line counts without its newline, but an event without its blank line is
    # dropped (WHATWG); keep-alive comments make no events.
    assert _decode_in_pieces(b"data: a\n\ndata: [DONE]", []) == [SSEEvent("a")]
    assert _decode_in_pieces(b": keep-alive\n\n: keep-alive\r\n\r\n:\r\r", [5, 17]) == []
