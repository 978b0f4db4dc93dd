"""Chat completions on a pure-diffusion server (reference §3.4 image bullet and §4).

Diffusion keys come at the top level (the OpenAI SDK's ``extra_body``) or inside a literal
``"extra_body"`` object; the same key in both is a 400. ``stream`` is ignored, ``model`` unchecked.

A video model fails the request after generating (issue 13 item 4): 0.30.0's chat path hands the Wan
pipeline's frame array to the PNG encoder, and ``ndarray.save`` does not exist, so it answers 500
"Image generation failed: ..." with its error helper's default type, BadRequestError.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from PIL import Image

from vomni_nb.sim import inputs, media, vlog
from vomni_nb.sim.app_deps import random_hex
from vomni_nb.sim.families import Family
from vomni_nb.sim.limits import LimitExceeded, Limits

__all__ = [
    "normalize_diffusion_args", "check_diffusion_args", "diffusion_prompt", "reference_images", "DiffusionChat",
    "DiffusionChatFailed", "NO_IMAGES",
]

COMMON_ROOT_FIELDS = frozenset({
    "height", "width", "num_outputs_per_prompt", "seed", "quality", "num_inference_steps", "guidance_scale",
    "true_cfg_scale", "num_frames", "guidance_scale_2", "layers", "resolution",
})
CONTROL_FIELDS = frozenset({"size", "negative_prompt", "lora", "modalities"})
ALIASES = {"cfg_scale": "true_cfg_scale"}
SERVING_FIELDS = COMMON_ROOT_FIELDS | CONTROL_FIELDS | ALIASES.keys()
QUALITY_LEVELS = ("lossless", "high")
NO_IMAGES = "Image generation completed but no images were produced."
VIDEO_OUTPUT_FAILURE = "'numpy.ndarray' object has no attribute 'save'"  # what the PNG step raises on video frames


class DiffusionChatFailed(Exception):
    """Generation ran but its output could not be answered (0.30.0: 500 "Image generation failed: ...")."""
DEFAULT_SIZE = (1024, 1024)


def _mapping(name: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a JSON object.")
    return dict(value)


def normalize_diffusion_args(root: Mapping[str, Any], nested: object) -> dict[str, Any]:
    """The recognised diffusion keys from both places; ValueError on duplicates or a bad quality."""
    root_args = dict(root)
    nested_args = _mapping("request.extra_body", nested)
    sources: dict[str, list[str]] = {}
    for keys, prefix in (
        (root_args.keys() & SERVING_FIELDS, "request"),
        (nested_args.keys() & SERVING_FIELDS, "request.extra_body"),
        (_mapping("extra_args", root_args.get("extra_args")).keys(), "request.extra_args"),
        (_mapping("extra_params", root_args.get("extra_params")).keys(), "request.extra_params"),
    ):
        for key in sorted(keys):
            sources.setdefault(ALIASES.get(key, key), []).append(f"{prefix}.{key}")
    conflicts = {key: paths for key, paths in sources.items() if len(set(paths)) > 1}
    if conflicts:
        details = "; ".join(f'"{key}": {", ".join(conflicts[key])}' for key in sorted(conflicts))
        raise ValueError(f"Diffusion request parameters were provided more than once: {details}.")
    args = {
        **{k: nested_args[k] for k in SERVING_FIELDS if k in nested_args},
        **{k: root_args[k] for k in SERVING_FIELDS if k in root_args},
    }
    for alias, canonical in ALIASES.items():
        if alias in args:
            args[canonical] = args.pop(alias)
    quality = args.get("quality")
    if quality is not None and quality not in QUALITY_LEVELS:
        raise ValueError(f"quality must be one of {list(QUALITY_LEVELS)}, got {quality!r}")
    layers = args.get("layers")
    if layers is not None and (not isinstance(layers, int) or not 2 <= layers <= 10):
        raise ValueError(f"Invalid layers value {layers}. layers must be between 2 and 10 inclusive.")
    return args


def diffusion_prompt(messages: list[dict[str, Any]]) -> str:
    """All user text parts joined with spaces; system and assistant messages are ignored."""
    texts: list[str] = []
    for message in messages:
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return " ".join(t for t in texts if t)


def reference_images(messages: list[dict[str, Any]], limits: Limits) -> list[Image.Image]:
    """Images from user ``data:image/...;base64,`` parts (http URLs are ignored, as on the real path)."""
    found: list[Image.Image] = []
    for message in messages:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for part in content:
            image_url = part.get("image_url") if isinstance(part, dict) else None
            url = str(image_url.get("url", "")) if isinstance(image_url, dict) else ""
            if not url.startswith("data:image/") or ";base64," not in url:
                continue
            try:
                data = base64.b64decode(url.split(",", 1)[1])
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"Failed to load image from data URL: {exc}") from exc
            try:
                found.append(inputs.open_image(data, limits))
            except LimitExceeded:
                raise
            except ValueError as exc:
                raise ValueError(f"Failed to load image from data URL: {exc}") from exc
    return found


def _integer(args: Mapping[str, Any], key: str, low: int, high: int | None = None, flag: str = "") -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer, got {str(value)[:80]!r}.")
    if value < low:
        raise ValueError(f"{key} must be at least {low}, got {str(value)[:80]}.")
    if high is not None and value > high:
        raise LimitExceeded(f"{key} must be at most {high} on vomni-sim ({flag}), got {str(value)[:80]}.")
    return value


def _number(args: Mapping[str, Any], key: str) -> float | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} must be a number, got {str(value)[:80]!r}.")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{key} must be a finite number, got {str(value)[:80]}.")
    return number


def check_diffusion_args(args: Mapping[str, Any], limits: Limits) -> None:
    """Types and ranges of the diffusion keys, so a bad value is a 400 and not an exception in the renderer."""
    _integer(args, "width", 1, limits.max_side, "--max-side")
    _integer(args, "height", 1, limits.max_side, "--max-side")
    _integer(args, "num_outputs_per_prompt", 1, limits.max_outputs_per_request, "--max-outputs-per-request")
    _integer(args, "num_inference_steps", 1)
    _integer(args, "num_frames", 1)
    _integer(args, "resolution", 1)
    seed = args.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer, got {str(seed)[:80]!r}.")
    for key in ("guidance_scale", "true_cfg_scale", "guidance_scale_2"):
        _number(args, key)
    for key in ("negative_prompt", "size"):
        if args.get(key) is not None and not isinstance(args[key], str):
            raise ValueError(f"{key} must be a string, got {str(args[key])[:80]!r}.")


def _size(args: Mapping[str, Any]) -> tuple[int, int]:
    width, height = args.get("width"), args.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width, height
    size = args.get("size")
    if isinstance(size, str) and "x" in size.lower() and len(size) <= 40:
        try:
            w, h = size.lower().split("x")
            return int(w), int(h)
        except ValueError:
            pass  # the real server logs "Invalid size format" and uses the model default
    return DEFAULT_SIZE


class DiffusionChat:
    """Builds the whole chat.completion body for one diffusion chat request."""

    def __init__(self, model: str, family: Family, max_pixels: int, limits: Limits | None = None) -> None:
        self.model = model
        self.family = family
        self.max_pixels = max_pixels
        self.limits = limits or Limits()

    def render(
        self, messages: list[dict[str, Any]], args: Mapping[str, Any], cancel: threading.Event | None = None
    ) -> tuple[list[str], str]:
        """(PNG data URLs, prompt). Runs in a worker thread; ``cancel`` stops it between images."""
        prompt = diffusion_prompt(messages)
        if self.family is Family.VIDEO:
            raise DiffusionChatFailed(VIDEO_OUTPUT_FAILURE)  # 0.30.0 chat never returns video (reference §10)
        width, height = _size(args)
        if width < 1 or height < 1:
            raise ValueError(f"Invalid size: {width}x{height}. Width and height must be positive integers.")
        if width > self.limits.max_side or height > self.limits.max_side:
            raise LimitExceeded(
                f"Requested image size {width}x{height} is larger than vomni-sim renders: at most "
                f"{self.limits.max_side} pixels on a side (--max-side)."
            )
        if width * height > self.max_pixels:
            raise ValueError(
                f"Requested image size {width}x{height} exceeds the maximum allowed size of {self.max_pixels} pixels."
            )
        seed = int(args.get("seed") or 0)
        count = int(args.get("num_outputs_per_prompt") or 1)
        if count * width * height > self.limits.max_output_pixels:
            raise LimitExceeded(
                f"{count} images of {width}x{height} are {count * width * height} pixels; vomni-sim makes at most "
                f"{self.limits.max_output_pixels} per request (--max-output-pixels)."
            )
        sources = reference_images(messages, self.limits)
        urls = []
        for index in range(count):
            if cancel is not None and cancel.is_set():  # the client left: nobody will read the rest
                vlog.info(f"Image chat stopped after {index} of {count} images: the client disconnected.",
                          where="chat_diffusion.py:1")
                return [], prompt
            if sources:
                image = media.edit_image(sources[0], prompt, seed=seed, width=width, height=height, index=index)
            else:
                image = media.render_image(
                    prompt, seed=seed, width=width, height=height, negative_prompt=args.get("negative_prompt"),
                    steps=args.get("num_inference_steps"), guidance=args.get("guidance_scale"), index=index,
                )
            recipe = {
                "prompt": prompt, "negative_prompt": args.get("negative_prompt"),
                "steps": args.get("num_inference_steps"), "guidance": args.get("guidance_scale"), "seed": seed,
                "width": width, "height": height, "model": self.model, "index": index, "simulated": True,
            }
            png = media.encode_image(image, "png", recipe=recipe)
            urls.append("data:image/png;base64," + base64.b64encode(png).decode())
        return urls, prompt

    def body(self, content: Any, prompt: str) -> dict[str, Any]:
        prompt_tokens = len(prompt.split())
        return {
            "id": f"chatcmpl-{random_hex(16)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant", "content": content, "refusal": None, "annotations": None,
                        "audio": None, "function_call": None, "reasoning": None,
                    },
                    "logprobs": None, "finish_reason": "stop", "stop_reason": None, "token_ids": None,
                    "routed_experts": None,
                }
            ],
            "service_tier": None,
            "system_fingerprint": None,
            "usage": {
                "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + 1, "completion_tokens": 1,
                "prompt_tokens_details": None,
            },
            "prompt_logprobs": None, "prompt_token_ids": None, "prompt_text": None,
            "kv_transfer_params": None, "ec_transfer_params": None, "metrics": None,
        }

    def image_items(self, urls: list[str], seconds: float, peak_mb: float) -> list[dict[str, Any]] | str:
        if not urls:
            return NO_IMAGES
        return [
            {
                "type": "image_url", "image_url": {"url": url},
                "stage_durations": {"diffusion": round(seconds, 4)}, "peak_memory_mb": peak_mb,
            }
            for url in urls
        ]

