"""Limits, bounded bodies, redaction of whole errors: the pure parts of the client's hardening (issue 14)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from vomni_nb.errors import BatchItemError, InvalidRequestError, Interrupted, ResponseFormatError, ServerError, StreamError
from vomni_nb.protocol.body import BoundedBody
from vomni_nb.protocol.limits import DEFAULT_LIMITS, Limits, format_size
from vomni_nb.protocol.status import error_from_response, redact_error
from vomni_nb.protocol.untrusted import json_depth, load_json

KEY = "sk-0123456789abcdef"


def test_limits_are_checked_and_named() -> None:
    assert DEFAULT_LIMITS.max_body_bytes == 256 << 20 and DEFAULT_LIMITS.stream_timeout == 3600.0
    assert Limits(stream_timeout=None).stream_timeout is None
    for bad in ({"max_body_bytes": 0}, {"max_line_bytes": 1.5}, {"max_stream_text": True}, {"stream_timeout": -1},
                {"stream_timeout": "1"}):
        with pytest.raises(InvalidRequestError, match="Limits."):
            Limits(**bad)  # type: ignore[arg-type]
    assert [format_size(n) for n in (256 << 20, 4096, 1000)] == ["256 MiB", "4 KiB", "1000 bytes"]


def _read(body: BoundedBody, raw: bytes, piece: int = 7) -> bytes:
    return b"".join(body.feed(raw[i:i + piece]) for i in range(0, len(raw), piece)) + body.end()


def test_bodies_decode_within_their_limits() -> None:
    text = b"hello " * 100
    for encoding, raw in (("gzip", gzip.compress(text)), ("deflate", zlib.compress(text)),
                          ("deflate", zlib.compress(text)[2:-4]), ("identity", text), ("", text)):
        assert _read(BoundedBody({"content-encoding": encoding}, 1000, what="The answer", setting="L"), raw) == text
    with pytest.raises(ResponseFormatError, match="expands past 1000 bytes when decompressed.*raise L"):
        _read(BoundedBody({"content-encoding": "gzip"}, 1000, what="The answer", setting="L"), gzip.compress(b"\0" * 10**6))
    with pytest.raises(ResponseFormatError, match="larger than 100 bytes"):
        _read(BoundedBody({}, 100, what="The answer", setting="L"), b"x" * 101)
    with pytest.raises(ResponseFormatError, match="declares 5,000 bytes"):  # refused before any byte is read
        BoundedBody({"content-length": "5000"}, 100, what="The answer", setting="L")
    with pytest.raises(ResponseFormatError, match="'br', which this client did not ask for"):
        BoundedBody({"content-encoding": "br"}, 100, what="The answer", setting="L")
    with pytest.raises(ResponseFormatError, match="corrupt compressed body"):
        _read(BoundedBody({"content-encoding": "gzip"}, 100, what="The answer", setting="L"), b"not gzip at all")


def test_json_nesting_is_bounded() -> None:
    assert json_depth({"a": [1, {"b": []}]}) == 4 and json_depth(5) == 0
    assert load_json(b"[" * 64 + b"]" * 64) is not None
    for depth in (65, 5000):
        with pytest.raises(ResponseFormatError, match="nests deeper"):
            load_json(b"[" * depth + b"]" * depth)


def test_redact_error_reaches_every_string_and_the_chain() -> None:
    body = {"error": {"message": f"bad {KEY}", "param": KEY}, "echo": [KEY, {"k": KEY}]}
    import json

    error = error_from_response(500, json.dumps(body).encode(), {}, url="http://h")
    assert KEY in str(error)  # no secret given: nothing to redact
    cause = StreamError(f"cut {KEY}", partial=f"text {KEY}")
    try:
        try:
            raise cause
        except StreamError as inner:
            raise error from inner
    except ServerError as outer:
        redact_error(outer, (KEY,))
    assert KEY not in str(error) and KEY not in json.dumps(error.body) and KEY not in str(error.param)
    assert KEY not in str(cause) and cause.partial == "text ***"
    # A cut through the key (2000 characters of message) leaves no piece of it.
    long = error_from_response(400, json.dumps({"error": {"message": "x" * 1990 + KEY}}).encode(), {},
                               url="http://h", secrets=(KEY,))
    assert KEY[:8] not in str(long)


def test_a_redirect_names_its_target_redacted() -> None:
    error = error_from_response(302, b'{"data": []}', {"location": f"http://evil/?k={KEY}"}, url="http://h/v1/x",
                                secrets=(KEY,))
    assert error.status_code == 302 and "redirects to http://evil/?k=***" in str(error) and KEY not in str(error)
    assert error.advice == "If you trust that address, give it as the server's URL."


def test_redact_error_reaches_an_interrupt_and_a_batch_item() -> None:
    # Ctrl-C keeps a stream's text in .partial (not a VomniError: it must escape `except Exception`), and
    # a failed batch item is returned, not raised: both carry what the server sent.
    interrupted = Interrupted(f"interrupted; {KEY}", url=f"http://h/?k={KEY}", partial=f"so far {KEY}")
    item = BatchItemError(f"Item 1 failed: Invalid voice '{KEY}'.", index=1, input="hi", reason=f"Invalid voice '{KEY}'",
                          advice=f"Try {KEY}")
    for error in (interrupted, item):
        assert redact_error(error, (KEY,)) is error
        assert KEY not in str(error) and KEY not in repr(error) and KEY not in repr(vars(error))
    assert interrupted.partial == "so far ***" and item.reason == "Invalid voice '***'" and item.input == "hi"
