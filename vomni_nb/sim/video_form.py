"""A ``/v1/videos`` request as the real server reads it: the multipart form, its JSON fields, vLLM-Omni's
``VideoGenerationRequest`` model (same name and bounds, so pydantic's messages match) and the size limits
checked before anything is queued (reference §3.12).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, NamedTuple

from fastapi import Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints, ValidationError, field_validator

from PIL import Image

from vomni_nb.sim import wan
from vomni_nb.sim.faults import sim_config
from vomni_nb.sim.families import Family
from vomni_nb.sim.limits import Limits
from vomni_nb.sim.video_refs import start_picture

__all__ = ["VideoGenerationRequest", "VideoRequest", "VideoForm", "parse_video_form", "check_video_limits",
           "DEFAULT_FPS"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DEFAULT_FPS = 24
QUALITY_LEVELS = ("lossless", "high")
SizeStr = Annotated[str, StringConstraints(pattern=r"^\d+x\d+$")]
SecondStr = Annotated[str, StringConstraints(pattern=r"^[1-9]\d*$")]


class VideoGenerationRequest(BaseModel):
    """The parts of vLLM-Omni's model the sim uses; same name, so pydantic's messages match."""

    model: str | None = None
    prompt: str
    seconds: SecondStr | None = None
    size: SizeStr | None = None
    image_reference: dict[str, Any] | list[dict[str, Any]] | None = None
    video_reference: dict[str, Any] | list[dict[str, Any]] | None = None
    audio_reference: dict[str, Any] | list[dict[str, Any]] | None = None
    user: str | None = None
    width: int | None = Field(default=None, ge=1, le=INT64_MAX)
    height: int | None = Field(default=None, ge=1, le=INT64_MAX)
    fps: float | None = Field(default=None, ge=1, le=INT64_MAX, allow_inf_nan=False)
    num_frames: int | None = Field(default=None, ge=1, le=INT64_MAX)
    aspect_ratio: str | None = None
    short_edge: int | None = Field(default=None, ge=1, le=INT64_MAX)
    num_outputs_per_prompt: int = Field(default=1, ge=1, le=10)
    start_time_seconds: float | None = Field(default=None, ge=0.0)
    quality: str | None = None
    negative_prompt: str | None = None
    num_inference_steps: int | None = Field(default=None, ge=1, le=200)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    guidance_scale_2: float | None = Field(default=None, ge=0.0, le=20.0)
    boundary_ratio: float | None = Field(default=None, ge=0.0, le=1.0)
    flow_shift: float | None = None
    true_cfg_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    generate_sound: bool = False
    sound_duration: float | None = Field(default=None, gt=0.0)
    enable_frame_interpolation: bool = False
    frame_interpolation_exp: int = Field(default=1, ge=1, le=INT64_MAX)
    frame_interpolation_scale: float = Field(default=1.0, gt=0.0)
    frame_interpolation_model_path: str | None = None
    lora: dict[str, Any] | None = None
    extra_params: dict[str, Any] | None = None
    return_stage_metrics: bool | None = None

    @field_validator("quality")
    @classmethod
    def _quality(cls, value: str | None) -> str | None:
        if value is not None and value not in QUALITY_LEVELS:
            raise ValueError(f"quality must be one of {list(QUALITY_LEVELS)}, got {value!r}")
        return value

    def resolved(self) -> tuple[int | None, int | None, float, int | None]:
        """(width, height, fps, num_frames) as the real ``resolve_video_params`` does it."""
        width, height = self.width, self.height
        if self.size:
            width, height = (int(part) for part in self.size.split("x"))
        fps = float(self.fps if self.fps is not None else DEFAULT_FPS)
        frames = self.num_frames
        if frames is None and self.seconds is not None:
            frames = int(float(self.seconds) * fps)
        return width, height, fps, frames


HUGE = 10**10  # stands for a digit string too long to convert: larger than any limit


def _dimension(text: str) -> int:
    """An int from a digit string; ``int()`` of 5,000 digits raises, and nothing that long fits a limit."""
    return int(text) if len(text) <= 9 else HUGE


def check_video_limits(req: VideoGenerationRequest, limits: Limits) -> None:
    """400 before anything is queued: each side, pixels per frame, and pixels x frames (no float overflow)."""
    if req.size:
        width, height = (_dimension(part) for part in req.size.split("x"))
    elif req.width is not None and req.height is not None:
        width, height = req.width, req.height
    else:
        width, height = wan.DEFAULT_SIZE  # what generate() renders when the size is incomplete
    shown = f"{min(width, HUGE)}x{min(height, HUGE)}"
    if width > limits.max_side or height > limits.max_side:
        raise HTTPException(400, f"Video size {shown} is larger than vomni-sim renders: at most {limits.max_side} "
                                 "pixels on a side (--max-side).")
    if width * height > limits.max_video_pixels:
        raise HTTPException(400, f"Video size {shown} has {width * height} pixels per frame; vomni-sim renders at "
                                 f"most {limits.max_video_pixels} (--max-video-pixels).")
    fps = float(req.fps if req.fps is not None else DEFAULT_FPS)
    if req.num_frames is not None:
        frames = float(req.num_frames)
    elif req.seconds is not None:
        frames = _dimension(req.seconds) * fps
    else:
        frames = float(wan.DEFAULT_FRAMES)
    if width * height * frames > limits.max_video_pixel_frames:
        most = max(1, limits.max_video_pixel_frames // (width * height))
        count = f"{frames:.0f}" if frames < HUGE else "more than 10^10"
        raise HTTPException(400, f"A {shown} clip of {count} frames is more than vomni-sim renders: at most "
                                 f"{most} frames at that size (--max-video-pixel-frames).")


def _parse_form_json(value: str | None, expected: type | None = None) -> Any:
    if value is None or value == "":
        return None
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError) as exc:  # deep nesting exhausts the parser's stack
        raise HTTPException(400, "Invalid JSON in form field.") from exc
    if expected is not None and not isinstance(parsed, expected):
        raise HTTPException(
            400, f"Invalid JSON in form field: expected {expected.__name__}, got {type(parsed).__name__}."
        )
    return parsed


class VideoRequest(NamedTuple):
    """A parsed video request: the model's fields, the served model name, the picture to start from."""

    req: VideoGenerationRequest
    model: str
    picture: Image.Image | None


async def parse_video_form(
    request: Request,
    prompt: str = Form(...),
    input_reference: UploadFile | None = File(default=None),
    input_references: list[UploadFile] | None = File(default=None),
    control_reference: UploadFile | None = File(default=None),
    control_type: str | None = Form(default=None),
    image_reference: str | None = Form(default=None),
    video_reference: str | None = Form(default=None),
    audio_reference: str | None = Form(default=None),
    model: str | None = Form(default=None),
    seconds: SecondStr | None = Form(default=None),
    size: SizeStr | None = Form(default=None),
    user: str | None = Form(default=None),
    width: int | None = Form(default=None),
    height: int | None = Form(default=None),
    num_frames: int | None = Form(default=None),
    fps: float | None = Form(default=None, ge=1, allow_inf_nan=False),
    aspect_ratio: str | None = Form(default=None),
    short_edge: int | None = Form(default=None, ge=1),
    num_outputs_per_prompt: int = Form(default=1, ge=1, le=10),
    start_time_seconds: float | None = Form(default=None, ge=0.0),
    quality: str | None = Form(default=None),
    num_inference_steps: int | None = Form(default=None),
    guidance_scale: float | None = Form(default=None),
    guidance_scale_2: float | None = Form(default=None),
    boundary_ratio: float | None = Form(default=None),
    flow_shift: float | None = Form(default=None),
    true_cfg_scale: float | None = Form(default=None),
    seed: int | None = Form(default=None),
    generate_sound: bool | None = Form(default=None),
    sound_duration: float | None = Form(default=None, gt=0.0),
    negative_prompt: str | None = Form(default=None),
    enable_frame_interpolation: bool | None = Form(default=None),
    frame_interpolation_exp: int | None = Form(default=None, ge=1),
    frame_interpolation_scale: float | None = Form(default=None, gt=0.0),
    frame_interpolation_model_path: str | None = Form(default=None),
    lora: str | None = Form(default=None),
    extra_params: str | None = Form(default=None),
    return_stage_metrics: bool | None = Form(default=None),
    source_video: UploadFile | None = File(default=None),
    source_audio: UploadFile | None = File(default=None),
    video_noise_mask: UploadFile | None = File(default=None),
    audio_noise_mask: UploadFile | None = File(default=None),
) -> VideoRequest | JSONResponse:
    """The real ``_parse_video_form``: form layer, JSON fields, the request model, the model-name check,
    then the reference picture."""
    parsed_image = _parse_form_json(image_reference)
    parsed_video = _parse_form_json(video_reference)
    parsed_audio = _parse_form_json(audio_reference)
    if input_references and any(item is not None for item in (parsed_image, parsed_video, input_reference)):
        raise HTTPException(
            400, "Provide input_references alone, without input_reference, image_reference, or video_reference."
        )
    if input_reference is not None and (parsed_image is not None or parsed_video is not None):
        raise HTTPException(
            400,
            "Provide only one of input_reference, image_reference, or video_reference when using "
            "input_reference; image_reference and video_reference may be combined.",
        )
    fields: dict[str, Any] = {
        "prompt": prompt, "model": model, "seconds": seconds, "size": size, "image_reference": parsed_image,
        "video_reference": parsed_video, "audio_reference": parsed_audio, "user": user, "width": width,
        "height": height, "num_frames": num_frames, "fps": fps, "aspect_ratio": aspect_ratio,
        "short_edge": short_edge, "num_outputs_per_prompt": num_outputs_per_prompt,
        "start_time_seconds": start_time_seconds, "quality": quality, "num_inference_steps": num_inference_steps,
        "guidance_scale": guidance_scale, "guidance_scale_2": guidance_scale_2, "boundary_ratio": boundary_ratio,
        "flow_shift": flow_shift, "true_cfg_scale": true_cfg_scale, "seed": seed, "generate_sound": generate_sound,
        "sound_duration": sound_duration, "negative_prompt": negative_prompt,
        "enable_frame_interpolation": enable_frame_interpolation, "frame_interpolation_exp": frame_interpolation_exp,
        "frame_interpolation_scale": frame_interpolation_scale,
        "frame_interpolation_model_path": frame_interpolation_model_path,
        "lora": _parse_form_json(lora, dict), "extra_params": _parse_form_json(extra_params, dict),
        "return_stage_metrics": return_stage_metrics,
    }
    try:
        req = VideoGenerationRequest(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        # pydantic's own multi-line message, as a BadRequestError (reference §1, last exception).
        body = {"error": {"message": str(exc), "type": "BadRequestError", "param": None, "code": 400}}
        return JSONResponse(body, status_code=400)
    config = sim_config(request)
    if config.family in (Family.OMNI, Family.TTS):
        raise HTTPException(503, "Video generation handler not initialized.")
    if req.model is not None and req.model != config.served_model_name:
        raise HTTPException(
            400, f"Model mismatch: request specifies '{req.model}' but server is running '{config.served_model_name}'."
        )
    check_video_limits(req, config.limits)
    picture = await start_picture(input_reference, parsed_image)
    return VideoRequest(req, config.served_model_name, picture)


VideoForm = Annotated[VideoRequest | JSONResponse, Depends(parse_video_form)]


