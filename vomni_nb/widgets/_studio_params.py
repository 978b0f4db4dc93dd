"""The Studio's parameters as data: checking what the form holds, the seeds of a Generate, the keyword
arguments of each ``image()`` call, the parameters a history entry restores, and which models make images.

Pure functions (no widget, no network): the widget's traits go in as a mapping, and every mistake is an
``InvalidRequestError`` that names the field, raised before anything is sent.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from typing import Any

from vomni_nb.errors import InvalidRequestError

__all__ = ["SIZES", "MAX_COUNT", "StudioParams", "check_params", "seeds_for", "image_kwargs", "params_of_record",
           "makes_images"]

# (size, label) presets of the size menu; a size given to Studio(...) that is not here is added to it.
SIZES = (
    ("512x512", "512 × 512 · 1:1"),
    ("768x768", "768 × 768 · 1:1"),
    ("1024x1024", "1024 × 1024 · 1:1"),
    ("1328x1328", "1328 × 1328 · 1:1"),
    ("1152x896", "1152 × 896 · 9:7"),
    ("896x1152", "896 × 1152 · 7:9"),
    ("1216x832", "1216 × 832 · 3:2"),
    ("832x1216", "832 × 1216 · 2:3"),
    ("1344x768", "1344 × 768 · 16:9"),
    ("768x1344", "768 × 1344 · 9:16"),
)
MAX_COUNT = 16
MAX_SEED = 2**63 - 1  # the server's seed is an int64
_IMAGE_WORDS = ("image", "flux", "stable-diffusion", "sd3", "sdxl", "hidream", "cogview", "lumina", "sana")


def makes_images(model: str | None) -> bool:
    """Whether a model id names a text-to-image model (the servers the Studio's picker offers).

    The server cannot say (``/v1/models`` lists no capabilities), so this reads the id: diffusion image
    families, not their edit variants (those need an input image), not omni, speech or video models.
    """
    if not model:
        return False
    lowered = model.lower()
    return "edit" not in lowered and any(word in lowered for word in _IMAGE_WORDS)


@dataclasses.dataclass(frozen=True)
class StudioParams:
    """One Generate: the prompt and its settings. ``steps``/``guidance`` None = the model's default;
    ``seed`` None = a new random seed; ``seed_locked`` keeps the seed for the next Generate."""

    prompt: str
    negative: str = ""
    size: str = "1024x1024"
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    seed_locked: bool = False
    count: int = 1


def _optional_number(value: Any, kind: type, name: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidRequestError(f"{name} takes a number; got {value!r}.")
    try:
        number = kind(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"{name} takes a number; got {value!r}.") from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise InvalidRequestError(f"{name} takes a whole number; got {value!r}.")
    return number


def _check_size(size: Any) -> str:
    text = str(size or "").strip().lower().replace("×", "x").replace(" ", "")
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 64 and int(height) >= 64):
        raise InvalidRequestError(f"size takes WIDTHxHEIGHT in pixels, each at least 64 (e.g. 1024x1024); got {size!r}.")
    return f"{int(width)}x{int(height)}"


def check_params(values: Mapping[str, Any]) -> StudioParams:
    """The form's values (prompt, negative, size, steps, guidance, seed, seed_locked, count) checked."""
    prompt = str(values.get("prompt") or "").strip()
    if not prompt:
        raise InvalidRequestError("Write a prompt first: the prompt is empty.")
    steps = _optional_number(values.get("steps"), int, "steps")
    if steps is not None and not 1 <= steps <= 200:
        raise InvalidRequestError(f"steps takes 1 to 200 (the server's limit); got {steps}.")
    guidance = _optional_number(values.get("guidance"), float, "guidance")
    if guidance is not None and not 0 <= guidance <= 20:
        raise InvalidRequestError(f"guidance takes 0 to 20 (the server's limit); got {guidance:g}.")
    seed = _optional_number(values.get("seed"), int, "seed")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise InvalidRequestError(f"seed takes 0 to 2**63-1; got {seed}.")
    count = _optional_number(values.get("count", 1), int, "count")
    if count is None or not 1 <= count <= MAX_COUNT:
        raise InvalidRequestError(f"count takes 1 to {MAX_COUNT} images; got {values.get('count')!r}.")
    return StudioParams(prompt=prompt, negative=str(values.get("negative") or "").strip(),
                        size=_check_size(values.get("size")), steps=steps, guidance=guidance, seed=seed,
                        seed_locked=bool(values.get("seed_locked")), count=count)


def seeds_for(params: StudioParams, draw: Any = None) -> list[int]:
    """The seeds of one Generate: the locked (or given) seed and the next ones, or a fresh random start.

    ``count`` images take consecutive seeds, as other image tools do, so any one of them can be made again.
    ``draw`` (for tests) returns a random start; the default is a uniform uint32, like the server's.
    """
    if params.seed is not None and params.seed_locked:
        start = params.seed
    else:
        start = draw() if draw is not None else secrets.randbelow(2**32)
    return [min(start + i, MAX_SEED) for i in range(params.count)]


def image_kwargs(params: StudioParams, seed: int) -> dict[str, Any]:
    """The ``image()`` call of one picture (a setting left at the model's default is not sent)."""
    kwargs: dict[str, Any] = {"prompt": params.prompt, "size": params.size, "seed": seed}
    if params.negative:
        kwargs["negative"] = params.negative
    if params.steps is not None:
        kwargs["steps"] = params.steps
    if params.guidance is not None:
        kwargs["guidance"] = params.guidance
    return kwargs


def params_of_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The form values that a provenance record (a history entry's) asks for again; its seed is locked."""
    params = record.get("params") if isinstance(record.get("params"), Mapping) else {}
    assert isinstance(params, Mapping)
    seed = record.get("seed", params.get("seed"))
    return {
        "prompt": str(record.get("prompt") or params.get("prompt") or ""),
        "negative": str(params.get("negative_prompt") or ""),
        "size": str(params.get("size") or ""),
        "steps": params.get("num_inference_steps"),
        "guidance": params.get("guidance_scale"),
        "seed": "" if seed is None else str(seed),
        "seed_locked": seed is not None,
        "model": record.get("model"),
    }
