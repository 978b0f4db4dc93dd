"""Which kind of model a model id stands for: the simulator serves one family per process.

Rule 1: a known id matches only as the Hugging Face hub spells it (``Tongyi-MAI/Z-Image-Turbo``,
not ``tongyi-mai/z-image-turbo``). A typo must fail here, as the real server's download would, not
start fine and then fail on a GPU.
Rule 2: beyond the known ids, only the documented patterns match (case-sensitive ``fnmatch``), and
the caller logs a warning naming the pattern, since a misspelt tail still matches.
Rule 3: anything else is unknown (``None``): the CLI refuses it like a missing model unless
``--family`` names one.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import fnmatch

__all__ = ["Family", "KNOWN_MODELS", "PATTERNS", "ModelMatch", "match_model", "family_of", "close_ids",
           "supports_edits"]


class Family(str, enum.Enum):
    IMAGE = "image"  # pure diffusion text-to-image (also edits when the model edits)
    OMNI = "omni"  # multi-stage chat: text in, text + audio out
    TTS = "tts"  # speech only (no chat handler)
    VIDEO = "video"  # diffusion video (the Wan2.x pipelines)


KNOWN_MODELS: dict[str, Family] = {
    "Tongyi-MAI/Z-Image-Turbo": Family.IMAGE,
    "Qwen/Qwen-Image": Family.IMAGE,
    "Qwen/Qwen-Image-2512": Family.IMAGE,
    "Qwen/Qwen-Image-Edit": Family.IMAGE,
    "Qwen/Qwen-Image-Edit-2509": Family.IMAGE,
    "Qwen/Qwen-Image-Edit-2511": Family.IMAGE,
    "black-forest-labs/FLUX.1-dev": Family.IMAGE,
    "stabilityai/stable-diffusion-3.5-medium": Family.IMAGE,
    "Qwen/Qwen2.5-Omni-7B": Family.OMNI,
    "Qwen/Qwen2.5-Omni-3B": Family.OMNI,
    "Qwen/Qwen3-Omni-30B-A3B-Instruct": Family.OMNI,
    "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice": Family.TTS,
    "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign": Family.TTS,
    "Qwen/Qwen3-TTS-12Hz-1.7B-Base": Family.TTS,
    "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice": Family.TTS,
    "Qwen/Qwen3-TTS-12Hz-0.6B-Base": Family.TTS,
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": Family.VIDEO,
    "Wan-AI/Wan2.2-I2V-A14B-Diffusers": Family.VIDEO,
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": Family.VIDEO,
}
# Documented in the README's family table; keep the two in step.
PATTERNS: tuple[tuple[str, Family], ...] = (
    ("Qwen/Qwen3-TTS-*", Family.TTS),
    ("Wan-AI/Wan2.*", Family.VIDEO),
)


@dataclasses.dataclass(frozen=True)
class ModelMatch:
    """How a model id was placed: ``pattern`` is None for a known id, else the pattern that matched."""

    family: Family
    pattern: str | None = None


def match_model(model: str) -> ModelMatch | None:
    """The family of ``model`` and how it was found, or None when the simulator does not know it."""
    if model in KNOWN_MODELS:
        return ModelMatch(KNOWN_MODELS[model])
    for pattern, family in PATTERNS:
        if fnmatch.fnmatchcase(model, pattern):
            return ModelMatch(family, pattern)
    return None


def family_of(model: str) -> Family | None:
    """The family of a model id, or None when the simulator does not know it."""
    found = match_model(model)
    return found.family if found else None


def close_ids(model: str) -> list[str]:
    """Known ids that ``model`` is probably a misspelling of (best first), for the refusal message."""
    by_folded = {known.lower(): known for known in KNOWN_MODELS}
    return [by_folded[hit] for hit in difflib.get_close_matches(model.lower(), by_folded, n=2, cutoff=0.8)]


def supports_edits(model: str) -> bool:
    """Image models whose name says they edit answer /v1/images/edits; others refuse with 400."""
    return "edit" in model.lower() or "qwen-image" in model.lower()
