"""``POST /v1/audio/speech/batch``: build the request from items and shared arguments, parse the answer.

The route (vLLM-Omni 0.30.0, reference §3.10) takes ``{"model"?, "items": [{"input", own fields...}],
shared fields...}`` and answers 200 with one result per item, in place: ``{"index", "status":
"success", "audio_data" (base64), "media_type", "usage"}`` or ``{"index", "status": "error",
"error": "<message>"}``. An item's own fields override the shared ones. The route has no ``seed``.

Rules: every item is validated as one speak() request would be (shared arguments with the item's
own on top), so bad input fails before anything is sent; a failed item becomes a
:class:`~vomni_nb.errors.BatchItemError` in its place and never hides the items that succeeded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from vomni_nb import _advice
from vomni_nb.errors import BatchItemError, InvalidRequestError, ResponseFormatError
from vomni_nb.protocol.build import RequestSpec, build_speech_request
from vomni_nb.protocol.dataurl import decode_base64
from vomni_nb.protocol.parse import field, load_json, parse_speech
from vomni_nb.protocol.untrusted import reads_untrusted
from vomni_nb.protocol.validate import check_names
from vomni_nb.provenance import Provenance
from vomni_nb.results import SpeechResult

__all__ = ["BatchItem", "ITEM_ARGUMENTS", "build_speech_batch_request", "parse_speech_batch", "item_failed"]

# What one item may set for itself (speak()'s names; ``text`` is its ``input``), as the route's items take.
ITEM_ARGUMENTS = ("text", "voice", "instructions", "response_format", "sample_rate", "speed", "language", "ref_audio",
                  "ref_text")
_WIRE = {"text": "input"}


@dataclasses.dataclass(frozen=True)
class BatchItem:
    """One utterance of a batch: its text, the speak() arguments it amounts to (``merged``: shared ones
    with its own on top) and the parameters its result records (as speak() would record them)."""

    text: str
    merged: Mapping[str, Any]
    params: Mapping[str, Any]


def _own(item: str | Mapping[str, Any], index: int) -> dict[str, Any]:
    if isinstance(item, str):
        return {"text": item}
    if not isinstance(item, Mapping):
        raise InvalidRequestError(f"Batch item {index + 1} must be a text or a dict with a 'text'; got {type(item).__name__}.")
    own = {("text" if key == "input" else key): value for key, value in item.items() if value is not None}
    check_names(f"Batch item {index + 1}", own, ITEM_ARGUMENTS)
    if "text" not in own:
        raise InvalidRequestError(f"Batch item {index + 1} has no 'text'.")
    return own


def build_speech_batch_request(items: Sequence[str | Mapping[str, Any]], shared: Mapping[str, Any], *,
                               model: str | None = None) -> tuple[RequestSpec, list[BatchItem]]:
    """The batch request and its items; ``shared`` are speak()'s keyword arguments (no ``seed``)."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise InvalidRequestError("items must be a non-empty list of texts (or dicts with a 'text').")
    shared = {key: value for key, value in shared.items() if value is not None}
    extra = shared.pop("extra", None)
    # The shared fields on the wire: what one request with these arguments would send, less its text.
    probe, _ = build_speech_request("-", model=model, extra=extra, **shared)
    body: dict[str, Any] = {key: value for key, value in probe.json.items() if key != "input"}
    wire_items: list[dict[str, Any]] = []
    built: list[BatchItem] = []
    for index, item in enumerate(items):
        own = _own(item, index)
        merged = {**shared, **own}
        text = merged.pop("text")
        spec, params = build_speech_request(text, model=model, extra=extra, **merged)
        # The item sends only its own fields, in their wire form (ref_audio as a URL): shared ones come from the top.
        wire_items.append({_WIRE.get(key, key): spec.json[_WIRE.get(key, key)] for key in own})
        built.append(BatchItem(text=text, merged={**merged, "extra": extra}, params=params))
    body["items"] = wire_items
    return RequestSpec("POST", "/v1/audio/speech/batch", json=body), built


# How the speech route words a refused item (the adapter's validation), as against a generation that failed.
_REFUSED = ("invalid", "requires", "must", "not supported", "only valid", "cannot be empty", "too long",
            "does not support", "unsupported")


def _item_error(index: int, text: str, reason: str, url: str | None) -> BatchItemError:
    refused = any(word in reason.lower() for word in _REFUSED)
    advice = "Check this item's parameters against what the model supports." if refused else _advice.SEE_SERVER_LOG
    return BatchItemError(item_failed(index, reason, advice), url=url, index=index, input=text, reason=reason,
                          advice=advice)


def item_failed(index: int, reason: str, advice: str) -> str:
    """The message of a failed item. It counts from 1, as the displayed list and the twin's checks do
    ("2." is the second text); ``BatchItemError.index`` stays the Python index (``batch[1]``)."""
    return f"Item {index + 1} of the batch failed: {reason.rstrip('.')}. {advice}"


@reads_untrusted("a speech batch answer")
def parse_speech_batch(content: bytes, provenances: Sequence[Provenance], formats: Sequence[str], *,
                       url: str | None = None) -> list[SpeechResult | BatchItemError]:
    """One entry per item, in order: its SpeechResult, or a BatchItemError for an item that failed."""
    body = load_json(content, "speech batch answer")
    results = field(body, "results", what="speech batch answer")
    if not isinstance(results, list):
        raise ResponseFormatError("The speech batch answer's 'results' is not a list.")
    # A hostile answer may put anything in "index" (a list is not even hashable): only whole numbers count.
    by_index = {item["index"]: item for item in results
                if isinstance(item, Mapping) and isinstance(item.get("index"), int) and not isinstance(item["index"], bool)}
    out: list[SpeechResult | BatchItemError] = []
    for index, (provenance, fmt) in enumerate(zip(provenances, formats)):
        item = by_index.get(index)
        if item is None:
            out.append(_item_error(index, provenance.prompt, "the server sent no result for this item", url))
        elif item.get("status") != "success":
            out.append(_item_error(index, provenance.prompt, str(item.get("error") or "no reason given"), url))
        else:
            audio = decode_base64(field(item, "audio_data", what="speech batch item"), "batch speech audio")
            speech = parse_speech(audio, {}, provenance, fmt)
            usage = item.get("usage")
            out.append(dataclasses.replace(speech, usage=dict(usage) if isinstance(usage, Mapping) else {}))
    return out
