"""POST /v1/images/generations and /v1/images/edits against a real vomni-sim (reference §3.7–3.8)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import zipfile

import httpx
import pytest
from PIL import Image

pytestmark = pytest.mark.timeout(90)
GEN = "/v1/images/generations"
EDIT = "/v1/images/edits"


def generate(server, **body) -> httpx.Response:
    return httpx.post(server.url + GEN, json={"prompt": "a red fox in snow", "size": "64x48", **body}, timeout=30)


def decode(reply: httpx.Response, index: int = 0) -> bytes:
    return base64.b64decode(reply.json()["data"][index]["b64_json"])


def pixels(data: bytes) -> bytes:
    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()


def png_bytes(size: tuple[int, int] = (40, 30), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def error_of(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    return reply.json()["error"]


# --- generations ---------------------------------------------------------------------------------


def test_generation_returns_a_png_of_the_requested_size(image_server) -> None:
    reply = generate(image_server, seed=5)
    assert reply.status_code == 200
    body = reply.json()
    assert body["output_format"] == "png" and body["size"] == "64x48" and body["cot_output"] is None
    assert body["data"][0]["url"] is None and body["data"][0]["revised_prompt"] is None
    assert set(body["metrics"]) >= {"stage_durations", "peak_memory_mb"}
    image = Image.open(io.BytesIO(decode(reply)))
    assert (image.format, image.size) == ("PNG", (64, 48))
    assert "a red fox in snow" in image.text["parameters"] and "Seed: 5" in image.text["parameters"]
    assert reply.headers["x-vomni-seed"] == "5"


def test_same_seed_same_bytes_and_other_seed_other_pixels(image_server) -> None:
    first, second = decode(generate(image_server, seed=42)), decode(generate(image_server, seed=42))
    assert first == second
    assert pixels(decode(generate(image_server, seed=43))) != pixels(first)
    assert pixels(decode(generate(image_server, seed=42, prompt="a blue whale"))) != pixels(first)


def test_missing_seed_is_random_and_reported(image_server) -> None:
    replies = [generate(image_server) for _ in range(2)]
    seeds = [int(reply.headers["x-vomni-seed"]) for reply in replies]
    assert all(0 <= seed < 2**32 for seed in seeds) and seeds[0] != seeds[1]
    # The reported seed reproduces the picture exactly.
    assert decode(generate(image_server, seed=seeds[0])) == decode(replies[0])


def test_n_images_differ(image_server) -> None:
    body = generate(image_server, seed=1, n=3).json()
    assert len(body["data"]) == 3
    assert len({item["b64_json"] for item in body["data"]}) == 3


def test_default_size_is_the_model_default(image_server) -> None:
    reply = httpx.post(image_server.url + GEN, json={"prompt": "default", "seed": 1}, timeout=30)
    assert reply.json()["size"] == "1024x1024"
    assert Image.open(io.BytesIO(decode(reply))).size == (1024, 1024)


@pytest.mark.parametrize(
    ("asked", "got", "pil"),
    [("jpeg", "jpeg", "JPEG"), ("jpg", "jpg", "JPEG"), ("webp", "webp", "WEBP"), ("gif", "jpeg", "JPEG"),
     ("PNG", "png", "PNG")],
)
def test_output_format_and_jpeg_fallback(image_server, asked: str, got: str, pil: str) -> None:
    reply = generate(image_server, seed=1, output_format=asked, output_compression=50)
    assert reply.json()["output_format"] == got
    assert Image.open(io.BytesIO(decode(reply))).format == pil


def test_file_response_single_image(image_server) -> None:
    reply = generate(image_server, seed=2, response_format="file")
    assert reply.headers["content-type"] == "image/png"
    assert re.fullmatch(r'attachment; filename="image_[0-9a-f]{8}\.png"', reply.headers["content-disposition"])
    assert int(reply.headers["content-length"]) == len(reply.content)
    assert reply.content == decode(generate(image_server, seed=2))


def test_file_response_several_images_is_a_zip(image_server) -> None:
    reply = generate(image_server, seed=2, n=2, response_format="file", output_format="webp")
    assert reply.headers["content-type"] == "application/zip"
    assert re.fullmatch(r'attachment; filename="images_[0-9a-f]{8}\.zip"', reply.headers["content-disposition"])
    with zipfile.ZipFile(io.BytesIO(reply.content)) as archive:
        assert archive.namelist() == ["image_0.webp", "image_1.webp"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 0}, "body.n"), ({"n": 11}, "body.n"), ({"num_inference_steps": 201}, "body.num_inference_steps"),
        ({"num_inference_steps": 0}, "body.num_inference_steps"), ({"guidance_scale": 20.5}, "body.guidance_scale"),
        ({"true_cfg_scale": -1}, "body.true_cfg_scale"), ({"output_compression": 101}, "body.output_compression"),
        ({"layers": 11}, "body.layers"), ({"seed": 2**63}, "body.seed"), ({"size": "64"}, "body.size"),
        ({"response_format": "url"}, "body.response_format"), ({"use_system_prompt": "shout"}, "body.use_system_prompt"),
        ({"prompt": None}, "body.prompt"),
    ],
)
def test_field_ranges_are_400_validation_errors(image_server, body: dict, param: str) -> None:
    error = error_of(generate(image_server, **body), 400)
    assert (error["type"], error["param"], error["code"]) == ("Bad Request", param, 400)
    assert re.match(r"\d+ validation errors?:\n  \{", error["message"])


def test_response_format_url_message(image_server) -> None:
    error = error_of(generate(image_server, response_format="url"), 400)
    assert "Only 'b64_json' or 'file' response format is supported, got: ResponseFormat.URL" in error["message"]


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("axb", "Invalid size format: 'axb'. Width and height must be integers."),
        ("1x2x3", "Invalid size format: '1x2x3'. Expected format: 'WIDTHxHEIGHT' (e.g., '1024x1024'). "
                  "Did you mean to use 'x' as separator?"),
        ("0x64", "Invalid size: 0x64. Width and height must be positive integers."),
        ("8000x8000", "Requested image size 8000x8000 exceeds the maximum allowed size of 33177600 pixels. "
                      "You can reduce the requested size or increase the server's --max-generated-image-size limit."),
    ],
)
def test_size_errors_are_http_400(image_server, size: str, message: str) -> None:
    error = error_of(generate(image_server, size=size), 400)
    assert error == {"message": message, "type": "Bad Request", "param": None, "code": 400}


def test_max_generated_image_size_flag(start_sim) -> None:
    sim = start_sim("Tongyi-MAI/Z-Image-Turbo", "--max-generated-image-size", "4096")
    assert generate(sim, size="64x64").status_code == 200
    assert "exceeds the maximum allowed size of 4096 pixels" in error_of(generate(sim, size="64x65"), 400)["message"]


def test_model_mismatch_is_400(image_server) -> None:
    error = error_of(generate(image_server, model="Qwen/Qwen-Image"), 400)
    assert error["message"] == (
        "Model mismatch: request specifies 'Qwen/Qwen-Image' but server is running 'Tongyi-MAI/Z-Image-Turbo'."
    )
    assert generate(image_server, model="Tongyi-MAI/Z-Image-Turbo").status_code == 200


def test_unknown_keys_are_ignored(image_server) -> None:
    assert generate(image_server, seed=1, quality="hd", style="vivid").status_code == 200


def test_models_without_a_diffusion_stage(omni_server, video_server) -> None:
    error = error_of(generate(omni_server), 503)
    assert error["message"] == "No diffusion stage found in multi-stage pipeline."
    assert "/v1/videos" in error_of(generate(video_server), 400)["message"]


def test_hundred_concurrent_small_images(image_server) -> None:
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=image_server.url, timeout=60) as client:
            replies = await asyncio.gather(
                *(client.post(GEN, json={"prompt": f"tile {i}", "size": "64x64", "seed": i}) for i in range(100))
            )
        return [reply.status_code for reply in replies]

    assert asyncio.run(burst()) == [200] * 100


# --- edits ---------------------------------------------------------------------------------------


def edit(server, files=None, **form) -> httpx.Response:
    data = {"prompt": "make it blue", "seed": "3", **form}
    if files is None:
        files = [("image", ("in.png", png_bytes(), "image/png"))]
    return httpx.post(server.url + EDIT, data=data, files=files, timeout=30)


def test_edit_keeps_the_input_size_by_default(edit_server) -> None:
    reply = edit(edit_server)
    body = reply.json()
    assert (reply.status_code, body["size"], body["output_format"]) == (200, "40x30", "png")
    output = Image.open(io.BytesIO(decode(reply)))
    assert output.size == (40, 30)
    assert output.convert("RGB").tobytes() != Image.open(io.BytesIO(png_bytes())).convert("RGB").tobytes()
    assert decode(edit(edit_server)) == decode(reply)  # deterministic for (input, prompt, seed)
    assert pixels(decode(edit(edit_server, seed="4"))) != pixels(decode(reply))


def test_edit_inputs_as_image_array_or_data_url(edit_server) -> None:
    as_array = edit(edit_server, files=[("image[]", ("in.png", png_bytes(), "image/png"))])
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    as_url = httpx.post(edit_server.url + EDIT, data={"prompt": "make it blue", "seed": "3", "url": data_url})
    assert decode(as_array) == decode(as_url) == decode(edit(edit_server))


def test_edit_size_format_and_background(edit_server) -> None:
    sized = edit(edit_server, size="64x48", n="2")
    assert sized.json()["size"] == "64x48" and len(sized.json()["data"]) == 2
    assert edit(edit_server, output_format="bmp").json()["output_format"] == "jpeg"
    assert edit(edit_server, output_format="", background="transparent").json()["output_format"] == "png"
    assert edit(edit_server, output_format="webp", background="transparent").json()["output_format"] == "webp"


def test_edit_errors(edit_server) -> None:
    missing = httpx.post(edit_server.url + EDIT, data={"prompt": "x"})
    assert error_of(missing, 422) == {
        "message": "Field 'image' or 'url' is required", "type": "Unprocessable Entity", "param": None, "code": 422,
    }
    assert error_of(edit(edit_server, response_format="url"), 400)["message"] == (
        "Only response_format 'b64_json' is supported now."
    )
    assert "only supported for multi-stage" in error_of(edit(edit_server, stream="true"), 400)["message"]
    two = [("image", ("a.png", png_bytes(), "image/png")), ("image", ("b.png", png_bytes(), "image/png"))]
    assert error_of(edit(edit_server, files=two), 400)["message"] == (
        "Received multiple input images. Only a single image is supported by this model."
    )
    assert "Cannot specify both 'resolution' and 'size'" in error_of(
        edit(edit_server, size="64x64", resolution="640"), 400
    )["message"]
    assert error_of(edit(edit_server, model="other"), 400)["message"].startswith("Model mismatch:")
    no_prompt = httpx.post(edit_server.url + EDIT, files=[("image", ("in.png", png_bytes(), "image/png"))])
    assert error_of(no_prompt, 400)["param"] == "body.prompt"
    assert error_of(edit(edit_server, output_compression="101"), 400)["param"] == "body.output_compression"
    bad_image = [("image", ("in.png", b"not a picture", "image/png"))]
    assert "Failed to decode input image" in error_of(edit(edit_server, files=bad_image), 400)["message"]


def test_text_to_image_models_refuse_edits_after_0_30_0s_own_checks(image_server) -> None:
    # Issue 13 item 5: every check 0.30.0 makes comes first, with its answer; the refusal only replaces generation.
    missing = httpx.post(image_server.url + EDIT, data={"prompt": "x"})
    assert error_of(missing, 422)["message"] == "Field 'image' or 'url' is required"
    assert error_of(edit(image_server, model="other"), 400)["message"].startswith("Model mismatch:")
    assert error_of(edit(image_server, response_format="url"), 400)["type"] == "Bad Request"
    two = [("image", ("a.png", png_bytes(), "image/png")), ("image", ("b.png", png_bytes(), "image/png"))]
    assert error_of(edit(image_server, files=two), 400)["message"].startswith("Received multiple input images.")
    bad_image = [("image", ("in.png", b"not a picture", "image/png"))]
    assert "Failed to decode input image" in error_of(edit(image_server, files=bad_image), 400)["message"]
    assert "exceeds the maximum" in error_of(edit(image_server, size="8000x8000"), 400)["message"]
    error = error_of(edit(image_server), 400)
    assert error["type"] == "BadRequestError"
    assert error["message"].startswith(
        "Tongyi-MAI/Z-Image-Turbo is a text-to-image model and does not support image editing; use "
        "/v1/images/generations, or serve an edit model such as Qwen/Qwen-Image-Edit."
    )
    assert "vLLM-Omni 0.30.0 would run the request and answer 200" in error["message"]


def test_edits_on_omni_and_video_servers(omni_server, video_server) -> None:
    missing = httpx.post(omni_server.url + EDIT, data={"prompt": "x"})  # no diffusion stage: before the form checks
    assert error_of(missing, 503)["message"] == "No diffusion stage found in multi-stage pipeline."
    assert error_of(httpx.post(video_server.url + EDIT, data={"prompt": "x"}), 422)["type"] == "Unprocessable Entity"
    refused = error_of(edit(video_server), 400)["message"]
    assert refused.startswith("Wan-AI/Wan2.2-TI2V-5B-Diffusers generates video and does not edit images;")
