"""Which kind of model a model id stands for: the simulator serves one family per process."""

from __future__ import annotations

import enum


class Family(str, enum.Enum):
    IMAGE = "image"  # pure diffusion text-to-image (also edits when the model edits)
    OMNI = "omni"  # multi-stage chat: text in, text + audio out
    TTS = "tts"  # speech only (no chat handler)
    VIDEO = "video"  # diffusion video


# Known ids (exact match, case-insensitive), then prefixes. Unknown ids are refused at start
# like a missing model, unless --family names one.
KNOWN_MODELS: dict[str, Family] = {
    "tongyi-mai/z-image-turbo": Family.IMAGE,
    "qwen/qwen-image": Family.IMAGE,
    "qwen/qwen-image-edit": Family.IMAGE,
    "qwen/qwen-image-edit-2509": Family.IMAGE,
    "black-forest-labs/flux.1-dev": Family.IMAGE,
    "stabilityai/stable-diffusion-3.5-medium": Family.IMAGE,
    "qwen/qwen2.5-omni-7b": Family.OMNI,
    "qwen/qwen2.5-omni-3b": Family.OMNI,
    "qwen/qwen3-omni-30b-a3b-instruct": Family.OMNI,
    "wan-ai/wan2.2-t2v-a14b-diffusers": Family.VIDEO,
    "wan-ai/wan2.2-ti2v-5b-diffusers": Family.VIDEO,
}
PREFIXES: tuple[tuple[str, Family], ...] = (
    ("qwen/qwen3-tts", Family.TTS),
    ("qwen/qwen-image", Family.IMAGE),
    ("tongyi-mai/z-image", Family.IMAGE),
    ("qwen/qwen2.5-omni", Family.OMNI),
    ("qwen/qwen3-omni", Family.OMNI),
    ("wan-ai/wan2", Family.VIDEO),
)


def family_of(model: str) -> Family | None:
    """The family of a model id, or None when the simulator does not know it."""
    key = model.strip().lower()
    if key in KNOWN_MODELS:
        return KNOWN_MODELS[key]
    for prefix, family in PREFIXES:
        if key.startswith(prefix):
            return family
    return None


def supports_edits(model: str) -> bool:
    """Image models whose name says they edit answer /v1/images/edits; others refuse with 400."""
    return "edit" in model.lower() or "qwen-image" in model.lower()
