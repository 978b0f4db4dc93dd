"""vomni-sim's image responses checked against vLLM-Omni 0.30.0's own pydantic models (reference §9)."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image
from pydantic import ValidationError

from tests.support.vllm_omni_models import load

pytestmark = pytest.mark.timeout(60)
images = load("images")


def _png(size: tuple[int, int] = (24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_helper_imports_without_torch_or_vllm() -> None:
    import sys

    assert "torch" not in sys.modules and "vllm" not in sys.modules
    assert images.ImageGenerationRequest.model_fields["n"].default == 1


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "a", "size": "32x32", "seed": 1},
        {"prompt": "a", "size": "32x32", "n": 2, "output_format": "webp", "output_compression": 40},
        {"prompt": "a", "size": "32x16", "negative_prompt": "blur", "num_inference_steps": 4, "guidance_scale": 3.5},
    ],
)
def test_generation_response_matches_the_real_model(image_server, body: dict) -> None:
    images.ImageGenerationRequest(**body)  # the request is one the real server accepts
    reply = httpx.post(image_server.url + "/v1/images/generations", json=body, timeout=30)
    parsed = images.ImageGenerationResponse.model_validate(reply.json())
    # Same keys, same order, as the real server's model_dump(mode="json").
    assert list(reply.json()) == list(parsed.model_dump(mode="json"))
    assert list(reply.json()["data"][0]) == list(parsed.data[0].model_dump(mode="json"))
    assert parsed.size == body["size"] and len(parsed.data) == body.get("n", 1)


def test_edit_response_matches_the_real_model(edit_server) -> None:
    reply = httpx.post(
        edit_server.url + "/v1/images/edits",
        data={"prompt": "warmer", "seed": "1"},
        files=[("image", ("x.png", _png(), "image/png"))],
    )
    parsed = images.ImageGenerationResponse.model_validate(reply.json())
    assert parsed.size == "24x16"
    assert list(reply.json()) == list(parsed.model_dump(mode="json"))


def test_file_response_matches_the_real_stream_response(image_server) -> None:
    """The real model's own ``stream_response`` gives the same media type and body as the sim."""
    body = {"prompt": "a", "size": "32x32", "seed": 9}
    json_reply = httpx.post(image_server.url + "/v1/images/generations", json=body).json()
    file_reply = httpx.post(image_server.url + "/v1/images/generations", json={**body, "response_format": "file"})
    real = images.ImageGenerationResponse.model_validate(json_reply).stream_response()
    assert file_reply.headers["content-type"] == real.media_type
    assert file_reply.content == base64.b64decode(json_reply["data"][0]["b64_json"])
    assert file_reply.headers["content-length"] == real.headers["content-length"]


BAD_OR_GOOD = [
    {"prompt": "a", "n": 10}, {"prompt": "a", "n": 11}, {"prompt": "a", "num_inference_steps": 200},
    {"prompt": "a", "num_inference_steps": 201}, {"prompt": "a", "guidance_scale": 0}, {"prompt": "a", "layers": 2},
    {"prompt": "a", "layers": 1}, {"prompt": "a", "size": "64"}, {"prompt": "a", "response_format": "file"},
    {"prompt": "a", "response_format": "url"}, {"prompt": "a", "output_compression": 0},
    {"prompt": "a", "output_compression": -1}, {"prompt": "a", "seed": -(2**63)}, {"prompt": "a", "seed": 2**63},
    {"prompt": "a", "use_system_prompt": "en_vanilla"}, {"prompt": "a", "use_system_prompt": "loud"}, {},
]


@pytest.mark.parametrize("body", BAD_OR_GOOD)
def test_sim_validates_exactly_like_the_real_request_model(image_server, body: dict) -> None:
    try:
        images.ImageGenerationRequest(**body)
        real_ok = True
    except ValidationError:
        real_ok = False
    probe = {**body, "size": body.get("size", "16x16")}
    if "layers" in body:
        probe["n"] = 1
    reply = httpx.post(image_server.url + "/v1/images/generations", json=probe, timeout=30)
    assert (reply.status_code == 200) == real_ok, reply.text
