"""POST /v1/images/generations (JSON) and POST /v1/images/edits (multipart), as in reference §3.7–3.8.

The wire is vLLM-Omni's; the only addition is an ``X-Vomni-Seed`` response header, because the
real response does not say which seed a request without one got.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import io
import random
import threading
import time
import uuid
import zipfile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, Field, field_validator
from starlette.datastructures import UploadFile as StarletteUpload

from vomni_nb.sim import faults, media
from vomni_nb.sim.app_deps import peak_memory_mb, require_json
from vomni_nb.sim.config import SimConfig
from vomni_nb.sim.families import Family, supports_edits
from vomni_nb.sim.limits import Limits
from vomni_nb.sim.httperrors import serving_error_response
from vomni_nb.sim.inputs import open_image

__all__ = ["router", "ImageGenerationRequest", "parse_size", "choose_output_format", "DEFAULT_SIZE"]

router = APIRouter()

MAX_UINT32_SEED = 2**32 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DEFAULT_SIZE = (1024, 1024)
LAYERS_RANGE = range(2, 11)
SUPPORTED_LAYERED_RESOLUTIONS = (640, 1024)
SYSTEM_PROMPT_TYPES = [None, "dynamic", "en_vanilla", "en_recaption", "en_think_recaption", "en_unified", "custom"]


class ResponseFormat(str, enum.Enum):
    B64_JSON = "b64_json"
    URL = "url"
    FILE = "file"


def _check_layers(value: int | None) -> int | None:
    if value is not None and value not in LAYERS_RANGE:
        raise ValueError(
            f"Invalid layers value {value}. layers must be between {LAYERS_RANGE.start} and "
            f"{LAYERS_RANGE.stop - 1} inclusive."
        )
    return value


class ImageGenerationRequest(BaseModel):
    """The fields and ranges of vLLM-Omni's request model; unknown keys are ignored as there."""

    prompt: str
    bot_task: str | None = None
    model: str | None = None
    n: int = Field(default=1, ge=1, le=10)
    size: str | None = None
    response_format: ResponseFormat = ResponseFormat.B64_JSON
    user: str | None = None
    layers: int | None = None
    negative_prompt: str | None = None
    system_prompt: str | None = None
    use_system_prompt: str | None = None
    num_inference_steps: int | None = Field(default=None, ge=1, le=200)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    true_cfg_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    flow_shift: float | None = None
    extra_params: dict[str, Any] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    generator_device: str | None = None
    lora: dict[str, Any] | None = None
    vae_use_slicing: bool | None = False
    vae_use_tiling: bool | None = False
    output_format: str | None = "png"
    output_compression: int = Field(default=100, ge=0, le=100)
    return_stage_metrics: bool | None = None

    @field_validator("size")
    @classmethod
    def _size_has_x(cls, value: str | None) -> str | None:
        if value is not None and "x" not in value:
            raise ValueError("size must be in format 'WIDTHxHEIGHT' (e.g., '1024x1024')")
        return value

    @field_validator("response_format")
    @classmethod
    def _known_format(cls, value: ResponseFormat) -> ResponseFormat:
        if value not in (ResponseFormat.B64_JSON, ResponseFormat.FILE):
            raise ValueError(f"Only 'b64_json' or 'file' response format is supported, got: {value}")
        return value

    @field_validator("layers")
    @classmethod
    def _layers(cls, value: int | None) -> int | None:
        return _check_layers(value)

    @field_validator("use_system_prompt")
    @classmethod
    def _system_prompt_type(cls, value: str | None) -> str | None:
        if value not in SYSTEM_PROMPT_TYPES:
            raise ValueError(
                f"Invalid use_system_prompt type: {value}. Must be one of: {SYSTEM_PROMPT_TYPES[1:] + [None]}"
            )
        return value


def parse_size(size: str) -> tuple[int, int]:
    """``"WxH"`` -> (w, h) with vLLM-Omni's messages (ValueError -> 400)."""
    if not size or not isinstance(size, str):
        raise ValueError(f"Size must be a non-empty string in format 'WIDTHxHEIGHT' (e.g., '1024x1024'), got: {size}")
    parts = size.split("x")
    if len(parts) != 2:
        raise ValueError(
            f"Invalid size format: '{size}'. Expected format: 'WIDTHxHEIGHT' (e.g., '1024x1024'). "
            "Did you mean to use 'x' as separator?"
        )
    try:
        width, height = int(parts[0]), int(parts[1])
    except ValueError:
        raise ValueError(f"Invalid size format: '{size}'. Width and height must be integers.") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"Invalid size: {width}x{height}. Width and height must be positive integers.")
    return width, height


def choose_output_format(output_format: str | None, background: str | None) -> str:
    """vLLM-Omni's rule: png/jpeg/jpg/webp kept; transparent background -> png; anything else -> jpeg."""
    fmt = (output_format or "").lower()
    if fmt in {"jpg", "png", "webp", "jpeg"}:
        return fmt
    if (background or "auto").lower() == "transparent":
        return "png"
    return "jpeg"


def _check_max_size(config: SimConfig, width: int | None, height: int | None, count: int = 1) -> None:
    limit = config.max_generated_image_size
    if width is not None and height is not None and width * height > limit:
        raise HTTPException(
            400,
            f"Requested image size {width}x{height} exceeds the maximum allowed size of {limit} pixels. "
            "You can reduce the requested size or increase the server's --max-generated-image-size limit.",
        )
    _check_sim_limits(config.limits, width, height, count)


def _check_sim_limits(limits: Limits, width: int | None, height: int | None, count: int) -> None:
    """vomni-sim's own caps beyond the area: each side (``33177600x1`` fits the area) and all images together."""
    if width is None or height is None:
        return
    if width > limits.max_side or height > limits.max_side:
        raise HTTPException(
            400, f"Requested image size {width}x{height} is larger than vomni-sim renders: at most {limits.max_side} "
                 "pixels on a side (--max-side).",
        )
    if count * width * height > limits.max_output_pixels:
        raise HTTPException(
            400, f"{count} images of {width}x{height} are {count * width * height} pixels; vomni-sim makes at most "
                 f"{limits.max_output_pixels} per request (--max-output-pixels).",
        )


def _check_model(config: SimConfig, model: str | None) -> None:
    if model is not None and model != config.served_model_name:
        raise HTTPException(
            400, f"Model mismatch: request specifies '{model}' but server is running '{config.served_model_name}'."
        )


def _check_image_family(config: SimConfig) -> None:
    if config.family in (Family.OMNI, Family.TTS):
        raise HTTPException(503, "No diffusion stage found in multi-stage pipeline.")
    if config.family is Family.VIDEO:
        raise HTTPException(
            400, f"{config.model} generates video; vomni-sim answers images only for image models (use /v1/videos)."
        )


def _encode_all(images: list[Image.Image], fmt: str, compression: int, recipes: list[dict[str, Any]]) -> list[str]:
    return [
        base64.b64encode(media.encode_image(img, fmt, compression=compression, recipe=recipe)).decode()
        for img, recipe in zip(images, recipes)
    ]


def _image_response(
    encoded: list[str], fmt: str, size: str, started: float, seed: int, file_response: bool
) -> Response:
    headers = {"X-Vomni-Seed": str(seed)}
    if file_response:
        return _file_response(encoded, fmt, headers)
    body = {
        "created": int(time.time()),
        "data": [{"b64_json": item, "url": None, "revised_prompt": None} for item in encoded],
        "output_format": fmt,
        "size": size,
        "cot_output": None,
        "metrics": {
            "stage_durations": {"diffusion": round(time.monotonic() - started, 4)},
            "peak_memory_mb": peak_memory_mb(),
        },
    }
    return JSONResponse(body, headers=headers)


def _file_response(encoded: list[str], fmt: str, headers: dict[str, str]) -> Response:
    extension = fmt if fmt in ("jpg", "jpeg", "png", "webp") else "png"
    if len(encoded) == 1:
        data = base64.b64decode(encoded[0])
        name = f"image_{uuid.uuid4().hex[:8]}.{extension}"
        media_type = media.image_content_type(extension)
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for index, item in enumerate(encoded):
                archive.writestr(f"image_{index}.{extension}", base64.b64decode(item))
        data = buffer.getvalue()
        name = f"images_{uuid.uuid4().hex[:8]}.zip"
        media_type = "application/zip"
    headers = {**headers, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type=media_type, headers=headers)


@router.post("/v1/images/generations", dependencies=[Depends(require_json)])
async def generate_images(body: ImageGenerationRequest, raw_request: Request) -> Response:
    config: SimConfig = raw_request.app.state.sim
    fault = await faults.before_generation(raw_request)
    if fault is not None:
        return fault
    _check_model(config, body.model)
    _check_image_family(config)
    try:
        width, height = parse_size(body.size) if body.size else DEFAULT_SIZE
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    _check_max_size(config, width, height, body.n)
    seed = body.seed if body.seed is not None else random.randint(0, MAX_UINT32_SEED)
    fmt = choose_output_format(body.output_format or "png", None)
    recipes = [
        {
            "prompt": body.prompt, "negative_prompt": body.negative_prompt, "steps": body.num_inference_steps,
            "guidance": body.guidance_scale, "seed": seed, "width": width, "height": height,
            "model": config.served_model_name, "index": index, "simulated": True,
        }
        for index in range(body.n)
    ]
    started = time.monotonic()

    # A worker thread cannot be cancelled; it checks this flag between images instead.
    aborted = threading.Event()

    def work() -> list[str]:
        encoded: list[str] = []
        for index in range(body.n):
            if aborted.is_set():
                return []
            image = media.render_image(
                body.prompt, seed=seed, width=width, height=height, negative_prompt=body.negative_prompt,
                steps=body.num_inference_steps, guidance=body.guidance_scale, index=index,
            )
            encoded += _encode_all([image], fmt, body.output_compression, recipes[index : index + 1])
        return encoded

    request_id = f"img_gen-{uuid.uuid4().hex}"
    try:
        encoded = await faults.run_cancellable(raw_request, request_id, asyncio.to_thread(work))
    except faults.ClientGone:
        aborted.set()
        return Response(status_code=499)
    return _image_response(
        encoded, fmt, f"{width}x{height}", started, seed, body.response_format == ResponseFormat.FILE
    )


def _decode_data_url(url: str) -> bytes:
    if not url.startswith("data:"):
        raise ValueError(
            f"Failed to load image from URL {url[:80]!r}: vomni-sim does not fetch remote URLs; send a data: URL."
        )
    try:
        return base64.b64decode(url.split(",", 1)[1], validate=False)
    except (IndexError, binascii.Error) as exc:
        raise ValueError("Invalid base64 data URL for input image.") from exc


def _open_images(payloads: list[bytes], limits: Limits) -> list[Image.Image]:
    """Decoded in a worker thread, each refused from its header when it claims too many pixels."""
    return [open_image(data, limits) for data in payloads]


def _max_input_images(model: str) -> int:
    # Qwen-Image-Edit takes one picture; the 2509/2511 releases take up to three.
    lowered = model.lower()
    return 3 if ("2509" in lowered or "2511" in lowered) else 1


def _cannot_edit(config: SimConfig) -> Response | None:
    """The simulator's own refusal where 0.30.0 would run the pipeline anyway (README: vomni-sim).

    0.30.0 closes /v1/images/edits only for MammothModa2; a text-to-image model answers 200 (Z-Image-Turbo
    treats the picture as an image-to-image start, FLUX.1-dev and SD 3.5 draw from the prompt alone), and a
    video model fails. The refusal comes where generation would start, after every check 0.30.0 makes.
    """
    if config.family is Family.VIDEO:
        return serving_error_response(
            f"{config.model} generates video and does not edit images; send the picture to /v1/videos as "
            "input_reference (image-to-video), or serve an edit model such as Qwen/Qwen-Image-Edit."
        )
    if not supports_edits(config.model):
        return serving_error_response(
            f"{config.model} is a text-to-image model and does not support image editing; use "
            "/v1/images/generations, or serve an edit model such as Qwen/Qwen-Image-Edit. (This refusal is "
            "vomni-sim's: vLLM-Omni 0.30.0 would run the request and answer 200, using the picture as an "
            "image-to-image start or ignoring it.)"
        )
    return None


@router.post("/v1/images/edits")
async def edit_images(
    raw_request: Request,
    prompt: Annotated[str, Form()],
    image: Annotated[list[UploadFile] | None, File()] = None,
    image_array: Annotated[list[UploadFile] | None, File(alias="image[]")] = None,
    url: Annotated[list[str] | None, Form()] = None,
    url_array: Annotated[list[str] | None, Form(alias="url[]")] = None,
    model: Annotated[str | None, Form()] = None,
    n: Annotated[int, Form()] = 1,
    size: Annotated[str, Form()] = "auto",
    response_format: Annotated[str, Form()] = "b64_json",
    output_format: Annotated[str | None, Form()] = "png",
    background: Annotated[str | None, Form()] = "auto",
    output_compression: Annotated[int, Form(ge=0, le=100)] = 100,
    stream: Annotated[bool, Form()] = False,
    user: Annotated[str | None, Form()] = None,
    negative_prompt: Annotated[str | None, Form()] = None,
    num_inference_steps: Annotated[int | None, Form()] = None,
    guidance_scale: Annotated[float | None, Form()] = None,
    strength: Annotated[float | None, Form()] = None,
    seed: Annotated[int | None, Form()] = None,
    layers: Annotated[int | None, Form()] = None,
    resolution: Annotated[int | None, Form()] = None,
) -> Response:
    # The checks run in 0.30.0's order (AS edit_images), so the same bad request gets the same first error:
    # form → engine → model → formats → images present (422) → how many → decodable → sizes → generation.
    config: SimConfig = raw_request.app.state.sim
    if config.family in (Family.OMNI, Family.TTS):
        raise HTTPException(503, "No diffusion stage found in multi-stage pipeline.")
    _check_model(config, model)
    fmt = choose_output_format(output_format, background)
    if response_format != "b64_json":
        raise HTTPException(400, "Only response_format 'b64_json' is supported now.")
    if stream:
        raise HTTPException(400, "stream=true is only supported for multi-stage image editing pipelines.")
    inputs: list[StarletteUpload | str] = [*(image or image_array or []), *(url or url_array or [])]
    if not inputs:
        raise HTTPException(422, "Field 'image' or 'url' is required")
    limit = _max_input_images(config.model)
    if len(inputs) > limit:
        raise HTTPException(
            400,
            "Received multiple input images. Only a single image is supported by this model."
            if limit == 1 else f"Received {len(inputs)} input images. At most {limit} images are supported by this model.",
        )
    try:
        payloads = [await item.read() if isinstance(item, StarletteUpload) else _decode_data_url(item) for item in inputs]
        sources = await asyncio.to_thread(_open_images, payloads, config.limits)
        _check_layers(layers)
        if resolution is not None and resolution not in SUPPORTED_LAYERED_RESOLUTIONS:
            raise HTTPException(
                400, f"Invalid resolution {resolution}. Supported resolutions: {list(SUPPORTED_LAYERED_RESOLUTIONS)}."
            )
        if resolution is not None and size.lower() != "auto":
            raise HTTPException(
                400,
                "Cannot specify both 'resolution' and 'size'. "
                "Use 'resolution' with size='auto', or use 'size' without 'resolution'.",
            )
        if size.lower() == "auto":
            width, height = (resolution, resolution) if resolution is not None else sources[0].size
        else:
            width, height = parse_size(size)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if n > config.limits.max_outputs_per_request:
        raise HTTPException(
            400, f"n must be at most {config.limits.max_outputs_per_request} on vomni-sim "
                 f"(--max-outputs-per-request), got {n}.",
        )
    count = max(1, n)
    _check_max_size(config, width, height, count)
    refusal = _cannot_edit(config)
    if refusal is not None:
        return refusal
    fault = await faults.before_generation(raw_request)
    if fault is not None:
        return fault
    used_seed = seed if seed is not None else random.randint(0, MAX_UINT32_SEED)
    recipes = [
        {
            "prompt": prompt, "negative_prompt": negative_prompt, "steps": num_inference_steps,
            "guidance": guidance_scale, "seed": used_seed, "width": width, "height": height,
            "model": config.served_model_name, "index": index, "edit": True, "simulated": True,
        }
        for index in range(count)
    ]
    started = time.monotonic()

    def work() -> list[str]:
        edited = [
            media.edit_image(sources[0], prompt, seed=used_seed, width=width, height=height, index=index)
            for index in range(count)
        ]
        return _encode_all(edited, fmt, output_compression, recipes)

    # Like the real route, edits have no disconnect watcher: the work always finishes.
    encoded = await asyncio.to_thread(work)
    return _image_response(encoded, fmt, f"{width}x{height}", started, used_seed, file_response=False)
