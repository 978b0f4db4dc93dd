"""``vomni_nb.rerun(id_or_path)``: send a recorded request again and say whether the answer is byte-identical.

The recipe comes from the history entry (an id) or from the file itself (any PNG we saved carries
its recipe in a ``vomni_nb`` chunk; speech and video files in the ``<stem>.json`` beside them).

Rules:

1. The same request: the recipe's keyword arguments (``Provenance.recipe``: same prompt, seed and
   parameters) to the method that made it; the media it sent (an edit's picture) come from the store.
   A failed entry is sent again with the arguments of the failed call.
2. To a server serving the same model: the one this kernel's server manager has for the model, else
   the recorded server URL, else ``server=``; a server that answers but serves another model is
   refused, and no server at all is an error that says what to start.
3. Byte-identical means the output files are equal byte for byte, a PNG without our recipe chunks
   (they hold the time and the request id; the pixels and every other chunk count). The original is
   the stored file (an id) or the file itself (a path).
4. The new result is recorded like any other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vomni_nb import _advice
from vomni_nb._history.sources import parse_history_id, reading_store
from vomni_nb._history.store import HistoryStore
from vomni_nb._recipes import png_without_recipe, read_recipe
from vomni_nb.errors import APIConnectionError, HistoryError, InvalidRequestError, ServerManagerError
from vomni_nb.provenance import Provenance

__all__ = ["Rerun", "rerun", "same_bytes"]

_MEDIA_ARGUMENTS = {"edit": "image", "video": "image"}


@dataclasses.dataclass(frozen=True, repr=False)
class Rerun:
    """A recorded generation sent again: the new ``result``, what it repeats (``original``: "history #12"
    or a path), and whether its output is byte-identical (``identical``; None when there was nothing to
    compare, as for a failed original). Displays as the new result under a one-line ``note``."""

    result: Any
    original: str
    identical: bool | None
    note: str
    server_url: str

    def __repr__(self) -> str:
        return f"{self.note}\n{self.result!r}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        data, metadata = self.result._repr_mimebundle_()
        data, metadata = dict(data), {**metadata}
        note_html = f'<p style="font-weight:bold">{html.escape(self.note)}</p>'
        data["text/plain"] = f"{self.note}\n{data.get('text/plain', '')}"
        if "text/html" in data:
            data["text/html"] = note_html + data["text/html"]
        elif "text/markdown" in data:
            data["text/markdown"] = f"**{self.note}**\n\n{data['text/markdown']}"
        else:
            for mime in ("image/png", "image/jpeg"):
                if mime in data:  # the picture moves into the HTML, under the note (embedded once)
                    data["text/html"] = f'{note_html}<img src="data:{mime};base64,{data.pop(mime)}"/>'
                    metadata.pop(mime, None)
        record = dict(metadata.get("vomni_nb", {}))
        record.update(rerun_of=self.original, identical=self.identical)
        metadata["vomni_nb"] = record
        return data, metadata


def same_bytes(new: bytes, original: bytes) -> bool:
    """Rule 3: equal files; PNGs compared without their recipe chunks."""
    if new.startswith(b"\x89PNG") and original.startswith(b"\x89PNG"):
        try:
            return png_without_recipe(new) == png_without_recipe(original)
        except InvalidRequestError:
            pass
    return new == original


@dataclasses.dataclass(frozen=True)
class _Source:
    """What a rerun repeats: its record, the original output files, the media it sent, and its name."""

    record: Mapping[str, Any]
    originals: tuple[bytes, ...]
    inputs: tuple[tuple[bytes, str], ...]
    name: str
    store: HistoryStore | None
    one_file: bool = False  # a file saved from a request's outputs (maybe one of its n images)


def _from_history(entry_id: int, store: HistoryStore | None) -> _Source:
    history = reading_store(store)
    entry = history.get(entry_id)
    if entry is None:
        raise InvalidRequestError(f"There is no history entry #{entry_id} in {history.path}.")
    try:
        originals = tuple(file.path.read_bytes() for file in entry.files)
        inputs = tuple((file.path.read_bytes(), file.mime) for file in history.inputs_of(entry))
    except OSError as exc:
        raise InvalidRequestError(f"A file of history #{entry_id} cannot be read: {exc}.") from exc
    return _Source(entry.record, originals, inputs, f"history #{entry_id}", history)


def _from_file(path: Path, store: HistoryStore | None) -> _Source:
    record = read_recipe(path)
    data = path.read_bytes()
    listed = record.get("inputs")
    inputs: list[tuple[bytes, str]] = []
    if isinstance(listed, list) and listed:
        history = reading_store(store)  # the media it sent are in the store that recorded it
        for item in listed:
            try:
                inputs.append((history.path_of(str(item["sha256"])).read_bytes(), str(item.get("mime", ""))))
            except (KeyError, TypeError, OSError, HistoryError) as exc:
                raise InvalidRequestError(f"{path}'s recipe names an input that is not in {history.path}.") from exc
    elif record.get("kind") in _MEDIA_ARGUMENTS or record.get("kind") == "chat":
        inputs = _inputs_of_stored_copy(data, store)
    return _Source(record, (data,), tuple(inputs), str(path), store, one_file=True)


def _inputs_of_stored_copy(data: bytes, store: HistoryStore | None) -> list[tuple[bytes, str]]:
    """The media sent by the request whose output is ``data``, when the history holds that very file.

    A result saved with ``.save()`` (or copied out of the store) has the bytes the store keeps, so
    its entry, found by content, says what the request sent; without a history, there is nothing."""
    try:
        history = reading_store(store)
        entries = history.entries_with_file(hashlib.sha256(data).hexdigest())
        return [(file.path.read_bytes(), file.mime) for file in history.inputs_of(entries[0])] if entries else []
    except (InvalidRequestError, OSError, HistoryError):
        return []


def _call(source: _Source) -> tuple[str, dict[str, Any]]:
    """(client method, keyword arguments) that make the same request (rule 1)."""
    record = source.record
    if isinstance(record.get("arguments"), Mapping) and record.get("method"):  # a failed call, as it was made
        method, arguments = str(record["method"]), dict(record["arguments"])
    else:
        provenance = Provenance.from_record(record)
        method, arguments = provenance.method, provenance.recipe
    kind = str(record.get("kind") or "")
    if kind in _MEDIA_ARGUMENTS:
        pictures = [data for data, mime in source.inputs if mime.startswith("image/")]
        if kind == "edit" and not pictures:
            raise InvalidRequestError(f"{source.name} is an edit, but the picture it edited is not in the history; "
                                      "rerun it with client.edit(picture, **recipe).")
        if pictures:
            arguments[_MEDIA_ARGUMENTS[kind]] = pictures if kind == "edit" and len(pictures) > 1 else pictures[0]
    if kind == "chat" and source.inputs:
        arguments["images"] = [data for data, mime in source.inputs if mime.startswith("image/")]
        arguments["audio"] = [data for data, mime in source.inputs if mime.startswith("audio/")]
    if method.endswith("_stream"):  # a stream that failed: asked again whole (the same request, not streamed)
        method = method[: -len("_stream")]
        arguments.pop("mode", None)
    return method, arguments


def _client_for(model: str | None, recorded_url: str | None, server: Any, store: HistoryStore | None) -> Any:
    """A client for a server serving ``model`` (rule 2)."""
    from vomni_nb.client import OmniClient

    if isinstance(server, OmniClient):
        client = server.with_options(history=store) if store is not None else server
    elif server is not None:
        client = OmniClient(server, history=store)
    else:
        found: Any = None
        if model:
            from vomni_nb.server import default_manager

            try:
                found = default_manager().server_for(model)
            except ServerManagerError:
                found = None
        if found is None and not recorded_url:
            raise InvalidRequestError(f"No server to send it to: the recipe names no server, and none here serves "
                                      f"{model or 'its model'}; {_advice.serve_model(model or 'MODEL')}, or pass server=URL.")
        client = OmniClient(found if found is not None else recorded_url, history=store)
    if model:
        try:
            _check_model(client, model)
        except BaseException:
            if not _is_client(server):
                client.close()
            raise
    return client


def _check_model(client: Any, model: str) -> None:
    try:
        served = client.models()
    except APIConnectionError as exc:
        raise APIConnectionError(
            f"The server that made it ({client.base_url}) does not answer, and no server here serves {model}: "
            f"{_advice.serve_model(model)}, or pass server=URL.", url=client.base_url) from exc
    if served and model not in served:
        raise InvalidRequestError(f"{client.base_url} serves {', '.join(served)}, not {model}: "
                                  f"{_advice.serve_model(model)}, or pass server= a server of {model}.")


def _is_client(server: Any) -> bool:
    from vomni_nb.client import OmniClient

    return isinstance(server, OmniClient)


def _outputs(result: Any) -> list[bytes]:
    images = getattr(result, "images", None)
    if isinstance(images, tuple) and not hasattr(result, "text"):  # an ImageBatch
        return [image.data for image in images]
    for attribute in ("data", "audio"):
        payload = getattr(result, attribute, None)
        if isinstance(payload, bytes):
            return [payload] + [image.data for image in getattr(result, "images", ())]
    return []


def _compare(source: _Source, result: Any) -> tuple[bool | None, str]:
    record = source.record
    if record.get("kind") == "chat":
        answer = record.get("answer")
        if not isinstance(answer, str):
            return None, f"nothing to compare with {source.name} (no answer was recorded)"
        same = answer == getattr(result, "text", None)
        return same, f"the same answer as {source.name}" if same else f"a different answer from {source.name}"
    if not source.originals:
        return None, f"nothing to compare with {source.name} (it has no output file: it failed)"
    new = _outputs(result)
    originals: Sequence[bytes] = source.originals
    if source.one_file and len(new) > 1:  # a file saved from one of the n images of a request
        same = any(same_bytes(output, originals[0]) for output in new)
        return same, (f"byte-identical to {source.name} (one of {len(new)} images)" if same
                      else f"differs from {source.name} (none of {len(new)} images is the same)")
    if len(new) != len(originals):
        return False, f"{len(new)} output(s) where {source.name} had {len(originals)}"
    differing = sum(not same_bytes(a, b) for a, b in zip(new, originals))
    if not differing:
        return True, f"byte-identical to {source.name}"
    return False, f"differs from {source.name}" + (f" ({differing} of {len(new)} files)" if len(new) > 1 else "")


def rerun(id_or_path: Any, *, server: Any = None, store: HistoryStore | None = None) -> Rerun:
    """Send a recorded generation again; the new result and whether it is byte-identical.

    ``id_or_path``: a history id (``12``, ``"#12"``) or a file we saved (a PNG carrying its recipe, or a
    speech/video file with its ``.json`` beside it). ``server``: a URL, a Server handle or an OmniClient;
    by default the server this kernel's manager has for the recorded model, else the recorded URL.
    ``store``: the history to read the id from and record into (default: the default store). Returns a
    :class:`Rerun` (``.result``, ``.identical``, ``.note``) that displays as the new result with the note.
    """
    named = parse_history_id(id_or_path)
    if named is not None:
        source = _from_history(named[0], store)
    elif isinstance(id_or_path, (str, os.PathLike)) and Path(id_or_path).expanduser().is_file():
        source = _from_file(Path(id_or_path).expanduser(), store)
    else:
        raise InvalidRequestError(f"rerun() takes a history id (12 or '#12') or a saved file; got {id_or_path!r}.")
    method, arguments = _call(source)
    model = source.record.get("model")
    client = _client_for(model if isinstance(model, str) else None, source.record.get("server_url"), server,
                         source.store)
    try:
        result = getattr(client, method)(**arguments)
    finally:
        if not _is_client(server):
            client.close()  # ours; a client passed in (or a copy sharing its connections) stays open
    identical, note = _compare(source, result)
    return Rerun(result, source.name, identical, f"rerun of {source.name} on {client.base_url}: {note}", client.base_url)
