"""What a model can do, read from its id alone: one table for advice (this client) and routing (the magics).

A task is what a client method asks for: ``"image"`` (text to image, also through chat), ``"edit"``,
``"chat"`` (a text or spoken answer), ``"speech"`` (text to speech) and ``"video"``; they are the
provenance kinds (``Provenance.kind``). :func:`tasks_for` says what a model is *for* (the tasks a
router should send it); :func:`answers` says whether its server answers a request for a task at all,
which is broader: vLLM-Omni 0.30.0 answers chat and edits on every diffusion image model (images
through chat; an edit as image-to-image), so the client refuses only what can never work.

Rules:

1. Pure: no imports from the simulator (it stays an independent oracle; a test holds the two tables
   in step) and no I/O. Unknown ids give ``None`` ("don't know"), never a guess: a server started
   with ``--served-model-name`` is asked, not refused.
2. Ids match as the Hugging Face hub spells them (case included); beyond them only the patterns in
   :data:`PATTERNS` (a checkpoint family whose every member does the same tasks).
3. Qwen3-TTS checkpoints differ in what they speak with (:func:`tts_variant`): CustomVoice has
   built-in speakers, VoiceDesign speaks in a voice described by ``instructions``, Base clones a
   voice (an uploaded one, or ``ref_audio``). The variant is read from the id's last component, as
   vLLM-Omni reads it from the checkpoint name.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Literal

__all__ = ["Task", "TASKS", "Family", "Capability", "KNOWN_MODELS", "PATTERNS", "capability", "tasks_for",
           "answers", "family_of", "tts_variant", "TTSVariant"]

Task = Literal["image", "edit", "chat", "speech", "video"]
TASKS: tuple[Task, ...] = ("image", "edit", "chat", "speech", "video")
Family = Literal["image", "omni", "tts", "video"]
TTSVariant = Literal["CustomVoice", "VoiceDesign", "Base"]


@dataclasses.dataclass(frozen=True)
class Capability:
    """A model's family, what it is for (``tasks``) and what its server answers at all (``answered``)."""

    family: Family
    tasks: frozenset[Task]
    answered: frozenset[Task]
    noun: str  # how a sentence names it: "an image model"


_IMAGE = Capability("image", frozenset({"image"}), frozenset({"image", "edit", "chat"}), "an image model")
_EDIT = Capability("image", frozenset({"image", "edit"}), frozenset({"image", "edit", "chat"}),
                   "an image-editing model")
_OMNI = Capability("omni", frozenset({"chat"}), frozenset({"chat"}), "an omni chat model")
_TTS = Capability("tts", frozenset({"speech"}), frozenset({"speech"}), "a TTS model")
_VIDEO = Capability("video", frozenset({"video"}), frozenset({"video"}), "a video model")

KNOWN_MODELS: dict[str, Capability] = {
    "Tongyi-MAI/Z-Image-Turbo": _IMAGE,
    "Qwen/Qwen-Image": _IMAGE,
    "Qwen/Qwen-Image-2512": _IMAGE,
    "Qwen/Qwen-Image-Edit": _EDIT,
    "Qwen/Qwen-Image-Edit-2509": _EDIT,
    "Qwen/Qwen-Image-Edit-2511": _EDIT,
    "black-forest-labs/FLUX.1-dev": _IMAGE,
    "stabilityai/stable-diffusion-3.5-medium": _IMAGE,
    "Qwen/Qwen2.5-Omni-7B": _OMNI,
    "Qwen/Qwen2.5-Omni-3B": _OMNI,
    "Qwen/Qwen3-Omni-30B-A3B-Instruct": _OMNI,
    "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice": _TTS,
    "Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign": _TTS,
    "Qwen/Qwen3-TTS-12Hz-1.7B-Base": _TTS,
    "Qwen/Qwen3-TTS-12Hz-0.6B-CustomVoice": _TTS,
    "Qwen/Qwen3-TTS-12Hz-0.6B-Base": _TTS,
    "Wan-AI/Wan2.2-T2V-A14B-Diffusers": _VIDEO,
    "Wan-AI/Wan2.2-I2V-A14B-Diffusers": _VIDEO,
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": _VIDEO,
}
PATTERNS: tuple[tuple[str, Capability], ...] = (
    ("Qwen/Qwen3-TTS-*", _TTS),
    ("Wan-AI/Wan2.*", _VIDEO),
)


def capability(model: str | None) -> Capability | None:
    """What ``model`` can do, or None when the id is not one this table knows."""
    if not model:
        return None
    if model in KNOWN_MODELS:
        return KNOWN_MODELS[model]
    return next((found for pattern, found in PATTERNS if fnmatch.fnmatchcase(model, pattern)), None)


def tasks_for(model: str | None) -> frozenset[str] | None:
    """The tasks ``model`` is for (route these to it), or None for an unknown id."""
    found = capability(model)
    return frozenset(found.tasks) if found is not None else None


def answers(model: str | None, task: str) -> bool | None:
    """Whether a server of ``model`` answers a request for ``task`` at all; None for an unknown id."""
    found = capability(model)
    return None if found is None else task in found.answered


def family_of(model: str | None) -> Family | None:
    found = capability(model)
    return found.family if found is not None else None


_VARIANT = re.compile(r"(?:^|[-_.])(custom[-_.]?voice|voice[-_.]?design|base)$")


def tts_variant(model: str | None) -> TTSVariant | None:
    """CustomVoice | VoiceDesign | Base for a Qwen3-TTS checkpoint id; None for anything else."""
    if not model or family_of(model) != "tts":
        return None
    match = _VARIANT.search(re.split(r"[\\/]+", model.rstrip("/\\"))[-1].lower())
    if match is None:
        return None
    variants: dict[str, TTSVariant] = {"customvoice": "CustomVoice", "voicedesign": "VoiceDesign", "base": "Base"}
    return variants[re.sub(r"[-_.]", "", match.group(1))]
