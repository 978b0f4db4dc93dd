"""How a result was made, as one record: :class:`Provenance`.

Every result carries one (``result.provenance``; ``result.model``, ``result.seed`` ... read from it).
The notebook output metadata (``{"vomni_nb": ...}``), the recipe chunk of a saved PNG and the
history store are all written from :meth:`Provenance.to_record`, so the same fields appear under the
same names everywhere, and :meth:`Provenance.from_record` reads any of them back.

Rules:

1. ``params`` are what the server was sent, under the wire names it saw (``num_inference_steps``,
   ``guidance_scale``, ``input`` for speech), never a secret.
2. A record is JSON-safe and says ``"schema": "vomni_nb/1"``. Readers ignore keys they do not know,
   so later versions may add keys (the output metadata adds size, usage, ...) under the same schema;
   renaming or removing one needs ``vomni_nb/2``.
3. :attr:`Provenance.recipe` maps ``params`` back to the keyword arguments of the client method that
   made the result (:attr:`Provenance.method`), so ``getattr(client, p.method)(**p.recipe)`` asks
   for the same thing again. What a recipe cannot hold (an edit's input images, a chat's attached
   media, a whole message list) is said in :attr:`Provenance.recipe`'s docstring.
4. Pure and light (the standard library, the error tree, the input checks): the protocol layer,
   the results and the history store import this module.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.validate import WIRE_SPELLINGS

__all__ = ["Provenance", "SCHEMA", "KINDS"]

SCHEMA = "vomni_nb/1"

# kind -> the client method that makes it.
KINDS: Mapping[str, str] = {"image": "image", "edit": "edit", "speech": "speak", "chat": "chat", "video": "video"}

# kind -> (wire name -> argument name, for names that differ; argument names that are wire names too).
_ARGUMENTS: dict[str, tuple[Mapping[str, str], frozenset[str]]] = {
    "image": (WIRE_SPELLINGS, frozenset({"prompt", "model", "size", "n", "seed", "output_format", "via"})),
    "edit": (WIRE_SPELLINGS, frozenset({"prompt", "model", "size", "n", "seed", "output_format"})),
    "video": (WIRE_SPELLINGS, frozenset({"prompt", "model", "size", "seconds", "fps", "num_frames", "seed"})),
    "speech": ({"input": "text"}, frozenset({"model", "voice", "response_format", "speed", "instructions", "language",
                                             "sample_rate", "seed", "ref_audio", "ref_text"})),
    "chat": ({}, frozenset({"prompt", "model", "system", "modalities", "voice", "max_tokens", "temperature", "seed"})),
}


def _json_safe(value: Any) -> Any:
    """``value`` as plain JSON types: mappings with text keys, lists, and text for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return str(value)


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Who was asked (``server_url``, ``model``), for what (``kind``, ``prompt``, ``params``, ``seed``),
    when (``created``, ``timings``) and in which request (``request_id``).

    ``kind`` is one of :data:`KINDS` (``""`` when unknown, as in a result built by hand). ``model`` is
    the model that answered, when known (given, from a Server handle, or learned from the server).
    ``request_id`` is the ``X-Request-Id`` of the request that produced the result.
    """

    kind: str = ""
    server_url: str | None = None
    model: str | None = None
    prompt: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    created: _dt.datetime | None = None
    request_id: str | None = None

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict of every field, plus ``"schema"``; ``created`` as ISO 8601 text."""
        return {
            "schema": SCHEMA,
            "kind": self.kind,
            "server_url": self.server_url,
            "model": self.model,
            "prompt": self.prompt,
            "params": _json_safe(self.params),
            "seed": self.seed,
            "timings": _json_safe(self.timings),
            "created": self.created.isoformat() if self.created is not None else None,
            "request_id": self.request_id,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Provenance:
        """The Provenance a :meth:`to_record` dict (or output metadata, or a PNG's recipe) describes.

        Keys this version does not know are ignored; a record of another schema is refused.
        """
        schema = record.get("schema")
        if schema != SCHEMA:
            raise InvalidRequestError(f"Not a vomni_nb provenance record: schema is {schema!r}, expected {SCHEMA!r}.")
        created = record.get("created")
        try:
            when = _dt.datetime.fromisoformat(created) if isinstance(created, str) else None
        except ValueError as exc:
            raise InvalidRequestError(f"The record's created time is not ISO 8601: {created!r}.") from exc
        params, timings = record.get("params"), record.get("timings")
        return cls(
            kind=str(record.get("kind") or ""),
            server_url=record.get("server_url"),
            model=record.get("model"),
            prompt=str(record.get("prompt") or ""),
            params=dict(params) if isinstance(params, Mapping) else {},
            seed=record.get("seed"),
            timings=dict(timings) if isinstance(timings, Mapping) else {},
            created=when,
            request_id=record.get("request_id"),
        )

    def to_json(self) -> str:
        """:meth:`to_record` as compact, key-sorted JSON text (what a PNG's ``vomni_nb`` chunk holds)."""
        return json.dumps(self.to_record(), sort_keys=True, ensure_ascii=False)

    @property
    def method(self) -> str:
        """The client method that makes this kind of result (``"speak"`` for speech)."""
        try:
            return KINDS[self.kind]
        except KeyError:
            raise InvalidRequestError(f"No client method makes results of kind {self.kind!r}.") from None

    @property
    def recipe(self) -> dict[str, Any]:
        """Keyword arguments for :attr:`method` that ask for this result again.

        ``client.image(**image.recipe)`` repeats an image (same seed, same parameters), and so does the
        twin that made it, ``vomni_nb.image(**image.recipe)`` (the twins take these names besides their
        own ``format`` / ``frames``; see :mod:`vomni_nb._twins`, rule 7). Wire fields with no argument of
        their own go under ``extra``. Not included, because the record does not
        keep them: an edit's input images (``client.edit(source, **recipe)``), a video's input image,
        a chat's attached images and audio, and the earlier turns of a message list.
        """
        try:
            renamed, same = _ARGUMENTS[self.kind]
        except KeyError:
            raise InvalidRequestError(f"No recipe for results of kind {self.kind!r}.") from None
        arguments: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in self.params.items():
            if key in renamed:
                arguments[renamed[key]] = value
            elif key in same:
                arguments[key] = value
            elif self.kind == "chat" and key == "audio" and isinstance(value, Mapping) and "format" in value:
                arguments["audio_format"] = value["format"]  # chat sends {"audio": {"format": ...}}
            else:
                extra[key] = value
        if self.kind == "video" and isinstance(arguments.get("seconds"), str) and arguments["seconds"].isdigit():
            arguments["seconds"] = int(arguments["seconds"])  # the form field is text; the argument a number
        if self.kind in ("image", "edit", "video") and self.seed is not None:
            arguments["seed"] = self.seed
        arguments.setdefault("prompt" if self.kind != "speech" else "text", self.prompt)
        if extra:
            arguments["extra"] = extra
        return arguments
