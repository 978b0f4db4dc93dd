"""One provenance record: JSON-safe, read back exactly, the same in the metadata and the PNG, and a
recipe that names the client method's own arguments."""

from __future__ import annotations

import datetime
import io
import json

import pytest
from PIL import Image

from vomni_nb.errors import InvalidRequestError
from vomni_nb.provenance import SCHEMA, Provenance
from vomni_nb.results import ImageResult

CREATED = datetime.datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=datetime.timezone.utc)
IMAGE = Provenance(
    kind="image", server_url="http://sim", model="m", prompt="a fox",
    params={"prompt": "a fox", "size": "64x64", "n": 1, "num_inference_steps": 4, "guidance_scale": 3.5,
            "negative_prompt": "blur", "seed": 7, "output_format": "png", "true_cfg_scale": 2.0},
    seed=7, timings={"total_s": 1.5, "request_s": 1.4}, created=CREATED, request_id="vomni-abc",
)


def _png(texts: dict[str, str] | None = None) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, text in (texts or {}).items():
        info.add_text(key, text)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 2), "red").save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def test_record_round_trip_is_exact_and_json_safe() -> None:
    record = IMAGE.to_record()
    assert record["schema"] == SCHEMA == "vomni_nb/1"
    assert set(record) == {"schema", "kind", "server_url", "model", "prompt", "params", "seed", "timings", "created",
                           "request_id"}
    assert json.loads(json.dumps(record)) == record and record["created"] == "2026-05-01T12:30:15.123456+00:00"
    assert Provenance.from_record(json.loads(json.dumps(record))) == IMAGE
    assert Provenance.from_record({**record, "added_later": 1, "size": "64x64"}) == IMAGE  # tolerant reader
    assert Provenance.from_record(Provenance().to_record()) == Provenance()
    odd = Provenance(params={"blob": b"\x00\x01", "pair": (1, 2), "when": CREATED})
    assert json.dumps(odd.to_record()["params"]) == '{"blob": "<2 bytes>", "pair": [1, 2], "when": "%s"}' % CREATED


def test_other_schemas_are_refused() -> None:
    for record in ({"kind": "image"}, {"schema": "vomni_nb/2"}, {"schema": SCHEMA, "created": "yesterday"}):
        with pytest.raises(InvalidRequestError):
            Provenance.from_record(record)


def test_recipes_use_each_methods_own_argument_names() -> None:
    assert IMAGE.method == "image" and IMAGE.recipe == {
        "prompt": "a fox", "size": "64x64", "n": 1, "steps": 4, "guidance": 3.5, "negative": "blur", "seed": 7,
        "output_format": "png", "extra": {"true_cfg_scale": 2.0}}
    speech = Provenance(kind="speech", prompt="hi", params={"input": "hi", "voice": "vivian", "response_format": "pcm"})
    assert speech.method == "speak" and speech.recipe == {"text": "hi", "voice": "vivian", "response_format": "pcm"}
    chat = Provenance(kind="chat", prompt="hi", params={"prompt": "hi", "system": "be brief", "modalities": ["text"],
                                                        "audio": {"format": "mp3"}, "top_p": 0.5})
    assert chat.recipe == {"prompt": "hi", "system": "be brief", "modalities": ["text"], "audio_format": "mp3",
                           "extra": {"top_p": 0.5}}
    video = Provenance(kind="video", prompt="a boat", seed=3,
                       params={"prompt": "a boat", "seconds": "2", "fps": 8.0, "num_inference_steps": 2, "seed": 3})
    assert video.recipe == {"prompt": "a boat", "seconds": 2, "fps": 8.0, "steps": 2, "seed": 3}
    with pytest.raises(InvalidRequestError, match="kind ''"):
        Provenance().recipe  # noqa: B018


def test_metadata_and_png_chunk_are_the_record(tmp_path) -> None:  # type: ignore[no-untyped-def]
    image = ImageResult(data=_png({"vomni_nb": '{"simulator": "its own recipe"}'}), format="png",
                        width=4, height=2, provenance=IMAGE)
    _, metadata = image._repr_mimebundle_()
    record = metadata["vomni_nb"]
    assert {key: record[key] for key in IMAGE.to_record()} == IMAGE.to_record()
    assert Provenance.from_record(record) == IMAGE and record["size"] == "4x2"
    # The file arrived with the simulator's own chunk; the saved file has ours (one schema).
    with Image.open(image.save(tmp_path)) as saved:
        saved.load()
        assert json.loads(saved.text["vomni_nb"]) == IMAGE.to_record()
        assert saved.text["vomni_nb"] == IMAGE.to_json()  # the chunk is Provenance.to_json(), byte for byte
        assert saved.text["parameters"].startswith("a fox\nNegative prompt: blur\nSteps: 4")
