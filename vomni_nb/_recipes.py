"""Recipes: the request that made a file, written into the file (PNG) or beside it (sidecar JSON).

Pure functions on bytes and records; nothing here touches the history database.

A *record* is the JSON-safe dict of one generation (``Provenance.to_record()``: ``schema``, ``kind``,
``model``, ``server_url``, ``prompt``, ``params``, ``seed``, ``timings``, ``created_at``, ...).

Rules:

1. A PNG gets two text chunks, placed before its first ``IDAT`` (where Pillow writes them, so
   ``Image.open(f).info`` sees them without decoding the pixels): ``parameters``, the "infotext" that
   AUTOMATIC1111 and the tools that copied it (ComfyUI loaders, Civitai, InvokeAI importers) read, and
   ``vomni_nb``, the whole record as JSON. Every other byte of the file is left as it was, so
   :func:`png_without_recipe` gives back the server's bytes exactly (a rerun compares those).
2. The infotext follows A1111's grammar (``modules/infotext_utils.py``): prompt lines, then an optional
   ``Negative prompt:`` line, then one line of ``Key: value`` pairs split on commas; a value holding a
   comma, colon or newline is written as a JSON string. A reader takes the last line as the pairs only
   when it holds at least three of them, so we always write at least three when we know them.
3. Speech and video files get a sidecar ``<stem>.json`` holding the record; it is never overwritten.
4. A recipe never carries a secret: keys named like an API key or an Authorization header are dropped.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from vomni_nb.errors import InvalidRequestError

__all__ = [
    "RECORD_SCHEMA",
    "clean_record",
    "infotext",
    "parse_infotext",
    "record_from_infotext",
    "png_text_chunks",
    "png_with_recipe",
    "png_without_recipe",
    "png_size",
    "sidecar_path",
    "write_sidecar",
    "read_recipe",
]

RECORD_SCHEMA = "vomni_nb/1"
PathLike = Union[str, "os.PathLike[str]"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_RECIPE_KEYWORDS = (b"parameters", b"vomni_nb")
_SECRET_KEYS = {"api_key", "apikey", "authorization", "x-api-key", "proxy-authorization"}

# A1111's pair grammar: a key of word characters, spaces, hyphens and slashes, a colon, then either a
# JSON string or anything up to the next comma.
_PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def clean_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``record`` without any key that could hold a secret (at any depth)."""

    def scrub(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): scrub(v) for k, v in value.items() if str(k).lower() not in _SECRET_KEYS}
        if isinstance(value, (list, tuple)):
            return [scrub(v) for v in value]
        return value

    return scrub(record)  # type: ignore[no-any-return]


# --- infotext (A1111 "parameters") ---------------------------------------------------------------


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def infotext(record: Mapping[str, Any], *, size: tuple[int, int] | None = None) -> str:
    """The ``parameters`` text for ``record``: prompt, ``Negative prompt: ...``, then ``Key: value`` pairs.

    ``size`` (width, height) is the image's real size; without it ``params["size"]`` is used.
    """
    params = record.get("params") or {}
    lines = [str(record.get("prompt") or "").strip()]
    if params.get("negative_prompt"):
        lines.append(f"Negative prompt: {str(params['negative_prompt']).strip()}")
    cfg = params.get("guidance_scale", params.get("true_cfg_scale"))
    pairs: dict[str, Any] = {
        "Steps": params.get("num_inference_steps"),
        "Sampler": params.get("sampler"),
        "CFG scale": _number(cfg) if cfg is not None else None,
        "Seed": record.get("seed"),
        "Size": f"{size[0]}x{size[1]}" if size else params.get("size"),
        "Model": record.get("model"),
        "Denoising strength": _number(params["strength"]) if params.get("strength") is not None else None,
    }
    lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in pairs.items() if value is not None))
    return "\n".join(lines)


def parse_infotext(text: str) -> dict[str, Any]:
    """Read an A1111 ``parameters`` text: ``{"prompt", "negative_prompt", "fields": {key: value}}``.

    Values stay strings (as A1111 keeps them); a JSON-quoted value is unquoted.
    """
    *lines, last = text.strip().split("\n")
    if len(_PAIR.findall(last)) < 3:  # not a pairs line: part of the prompt, as A1111 reads it
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not negative and line.startswith("Negative prompt:"):
            negative.append(line[len("Negative prompt:") :].strip())
        elif negative:
            negative.append(line)
        else:
            prompt.append(line)
    fields: dict[str, str] = {}
    for key, value in _PAIR.findall(last):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                pass
        fields[key.strip()] = value.strip() if isinstance(value, str) else str(value)
    return {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative), "fields": fields}


def _as_number(text: str | None, kind: type) -> Any:
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        return None


def record_from_infotext(text: str) -> dict[str, Any]:
    """A record (our shape) from a foreign ``parameters`` text; every field it had is kept under ``infotext``."""
    parsed = parse_infotext(text)
    fields = parsed["fields"]
    params: dict[str, Any] = {}
    if parsed["negative_prompt"]:
        params["negative_prompt"] = parsed["negative_prompt"]
    steps = _as_number(fields.get("Steps"), int)
    if steps is not None:
        params["num_inference_steps"] = steps
    cfg = _as_number(fields.get("CFG scale"), float)
    if cfg is not None:
        params["guidance_scale"] = cfg
    size = _SIZE.match(fields.get("Size", ""))
    if size:
        params["size"] = f"{size.group(1)}x{size.group(2)}"
    strength = _as_number(fields.get("Denoising strength"), float)
    if strength is not None:
        params["strength"] = strength
    if fields.get("Sampler"):
        params["sampler"] = fields["Sampler"]
    return {
        "schema": RECORD_SCHEMA,
        "kind": "image",
        "model": fields.get("Model"),
        "server_url": None,
        "prompt": parsed["prompt"],
        "params": params,
        "seed": _as_number(fields.get("Seed"), int),
        "recipe_source": "infotext",
        "infotext": fields,
    }


# --- PNG chunks ----------------------------------------------------------------------------------


def _chunks(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(offset, type, body) of every chunk; a file that is not a whole PNG raises InvalidRequestError."""
    if not data.startswith(_PNG_SIGNATURE):
        raise InvalidRequestError("Not a PNG file (its first bytes are not the PNG signature).")
    chunks, offset = [], len(_PNG_SIGNATURE)
    while offset < len(data):
        if offset + 12 > len(data):
            raise InvalidRequestError(f"The PNG file is truncated at byte {offset}.")
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        end = offset + 12 + length
        if end > len(data):
            raise InvalidRequestError(f"The PNG file is truncated inside its {kind!r} chunk.")
        chunks.append((offset, kind, data[offset + 8 : offset + 8 + length]))
        offset = end
        if kind == b"IEND":
            break
    if not chunks or chunks[0][1] != b"IHDR" or chunks[-1][1] != b"IEND":
        raise InvalidRequestError("The PNG file has no IHDR or no IEND chunk.")
    return chunks


def _text_of(kind: bytes, body: bytes) -> tuple[str, str] | None:
    keyword, _, rest = body.partition(b"\0")
    try:
        key = keyword.decode("latin-1")
        if kind == b"tEXt":
            return key, rest.decode("latin-1")
        if kind == b"zTXt":
            return key, zlib.decompress(rest[1:]).decode("latin-1")
        flag, _method, rest = rest[0], rest[1], rest[2:]
        _language, _, rest = rest.partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        return key, (zlib.decompress(text) if flag else text).decode("utf-8")
    except (IndexError, zlib.error, UnicodeDecodeError):
        return None  # a damaged text chunk is skipped, as image viewers do


def png_text_chunks(data: bytes) -> dict[str, str]:
    """Every readable tEXt/zTXt/iTXt chunk of a PNG, keyword to text (the first of a repeated keyword wins)."""
    texts: dict[str, str] = {}
    for _, kind, body in _chunks(data):
        if kind in _TEXT_CHUNKS:
            item = _text_of(kind, body)
            if item is not None:
                texts.setdefault(*item)
    return texts


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk."""
    body = _chunks(data)[0][2]
    width, height = struct.unpack(">II", body[:8])
    return int(width), int(height)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _text_chunk(key: str, text: str) -> bytes:
    # Pillow's rule, which A1111 inherits: tEXt when the text is Latin-1, UTF-8 iTXt otherwise.
    try:
        return _chunk(b"tEXt", key.encode("latin-1") + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def png_without_recipe(data: bytes) -> bytes:
    """``data`` without its ``parameters`` and ``vomni_nb`` text chunks (every other byte unchanged)."""
    out, last = [], 0
    for offset, kind, body in _chunks(data):
        if kind in _TEXT_CHUNKS and body.partition(b"\0")[0] in _RECIPE_KEYWORDS:
            out.append(data[last:offset])
            last = offset + 12 + len(body)
    out.append(data[last:])
    return b"".join(out)


def png_with_recipe(data: bytes, record: Mapping[str, Any]) -> bytes:
    """``data`` carrying ``record`` as a ``parameters`` chunk and a ``vomni_nb`` JSON chunk (old ones replaced)."""
    data = png_without_recipe(data)
    chunks = _chunks(data)
    clean = clean_record(record)
    recipe = _text_chunk("parameters", infotext(clean, size=png_size(data)))
    # The same text as Provenance.to_json(): one record, written the same way everywhere.
    recipe += _text_chunk("vomni_nb", json.dumps(clean, sort_keys=True, ensure_ascii=False))
    at = next((offset for offset, kind, _ in chunks if kind == b"IDAT"), chunks[-1][0])
    return data[:at] + recipe + data[at:]


# --- reading a recipe back -----------------------------------------------------------------------


def sidecar_path(path: PathLike) -> Path:
    """The recipe file beside a media file: same folder, same stem, ``.json``."""
    return Path(path).with_suffix(".json")


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(clean_record(record), ensure_ascii=False, sort_keys=True, indent=1) + "\n"


def write_sidecar(path: PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` to :func:`sidecar_path` of ``path``; never overwrites a different file there."""
    target = sidecar_path(path)
    text = _dumps(record).encode("utf-8")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        if target.read_bytes() == text:
            return target
        raise FileExistsError(f"{target} exists and is not this file's recipe; it was left as it was.") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(text)
    return target


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidRequestError(f"{where} is not valid JSON.") from exc


def _checked(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict) or record.get("schema") != RECORD_SCHEMA:
        raise InvalidRequestError(f"{where} is not a vomni_nb recipe (no \"schema\": \"{RECORD_SCHEMA}\").")
    return record


def read_recipe(path: PathLike) -> dict[str, Any]:
    """The record a file was made from: its ``vomni_nb`` chunk, else its ``parameters`` chunk, else its sidecar.

    A PNG from another tool with only a ``parameters`` chunk gives a record with ``kind`` "image" and the
    fields A1111 writes. A file with no recipe raises InvalidRequestError saying what was looked for.
    """
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
    if data.startswith(_PNG_SIGNATURE):
        texts = png_text_chunks(data)
        if "vomni_nb" in texts:
            return _checked(_json(texts["vomni_nb"], f"The vomni_nb chunk of {file}"), f"The vomni_nb chunk of {file}")
        if "parameters" in texts:
            return record_from_infotext(texts["parameters"])
    sidecar = sidecar_path(file)
    if sidecar.is_file() and sidecar != file:
        try:
            text = sidecar.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(f"Cannot read the recipe {sidecar}: {exc}.") from exc
        return _checked(_json(text, str(sidecar)), str(sidecar))
    looked = "no vomni_nb or parameters chunk, and " if data.startswith(_PNG_SIGNATURE) else ""
    raise InvalidRequestError(f"{file} carries no recipe: {looked}no {sidecar.name} beside it.")
