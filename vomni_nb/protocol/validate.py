"""Input checks made before anything is sent; each failure is an InvalidRequestError with the reason."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from vomni_nb.errors import InvalidRequestError

__all__ = [
    "ImageFormat",
    "ImageRoute",
    "SpeechFormat",
    "StreamingSpeechFormat",
    "SpeechStreamMode",
    "Modality",
    "WIRE_SPELLINGS",
    "fold_wire_spellings",
    "one_setting",
    "check_names",
    "parse_size",
    "format_size",
    "check_prompt",
    "check_int",
    "check_float",
    "check_seed",
    "image_output_format",
    "speech_format",
    "IMAGE_FORMATS",
    "SPEECH_FORMATS",
    "STREAMING_SPEECH_FORMATS",
    "SEED_MIN",
    "SEED_MAX",
]

# The closed sets of values, as types (so signatures document them) and as tuples (so checks list them).
ImageFormat = Literal["png", "jpeg", "jpg", "webp"]  # jpg is read as jpeg
ImageRoute = Literal["images", "chat"]  # /v1/images/generations, or chat completions
SpeechFormat = Literal["wav", "pcm", "flac", "mp3", "opus"]
StreamingSpeechFormat = Literal["wav", "pcm"]  # the server streams only these
SpeechStreamMode = Literal["audio", "sse"]  # raw bytes, or speech.audio.* events
Modality = Literal["text", "audio", "image"]

IMAGE_FORMATS = ("png", "jpeg", "webp")
SPEECH_FORMATS: tuple[str, ...] = get_args(SpeechFormat)
STREAMING_SPEECH_FORMATS: tuple[str, ...] = get_args(StreamingSpeechFormat)

# Wire names the diffusion methods (image, edit, images, video) also take, so that
# ``client.image(**result.params)`` works: result.params records what the server was sent.
WIRE_SPELLINGS: Mapping[str, str] = {
    "num_inference_steps": "steps",
    "guidance_scale": "guidance",
    "negative_prompt": "negative",
}
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1
MAX_SIDE = 16384

def fold_wire_spellings(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with each wire spelling folded into its short name (``num_inference_steps`` -> ``steps``).

    Both spellings with different values is an error; unset (None) values are dropped.
    """
    folded = {key: value for key, value in options.items() if key not in WIRE_SPELLINGS}
    for wire, short in WIRE_SPELLINGS.items():
        value = one_setting(short, folded.get(short), wire, options.get(wire))
        if value is not None:
            folded[short] = value
    return folded


def one_setting(name: str, value: Any, other: str, other_value: Any, *, why: str = "the same setting") -> Any:
    """The value of a setting that has two names, ``name`` and ``other``: whichever was given (None when
    neither); both with different values is an error, since neither can be guessed to win."""
    if other_value is None:
        return value
    if value is not None and value != other_value:
        raise InvalidRequestError(f"Give {name}= or {other}= ({why}), not both; got {value!r} and {other_value!r}.")
    return other_value


def check_names(what: str, given: Mapping[str, Any], valid: tuple[str, ...]) -> None:
    """Names passed through a ``**``/dict path that the target does not take: an error listing the valid ones."""
    unknown = [name for name in given if name not in valid]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        raise InvalidRequestError(f"{what} takes no {names}; valid names: {', '.join(valid)}.")


_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_size(size: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"1024x768"`` (or a (width, height) pair) -> (1024, 768)."""
    if isinstance(size, (tuple, list)) and len(size) == 2:
        width, height = size
    elif isinstance(size, str):
        match = _SIZE.match(size)
        if match is None:
            raise InvalidRequestError(f"size must look like 'WIDTHxHEIGHT', e.g. '1024x1024'; got {size!r}.")
        width, height = int(match.group(1)), int(match.group(2))
    else:
        raise InvalidRequestError(f"size must be a 'WIDTHxHEIGHT' string or a (width, height) pair; got {size!r}.")
    for side in (width, height):
        if isinstance(side, bool) or not isinstance(side, int) or not 1 <= side <= MAX_SIDE:
            raise InvalidRequestError(f"size sides must be whole numbers from 1 to {MAX_SIDE}; got {size!r}.")
    return width, height


def format_size(size: str | tuple[int, int] | list[int]) -> str:
    width, height = parse_size(size)
    return f"{width}x{height}"


def check_prompt(prompt: Any, name: str = "prompt") -> str:
    if not isinstance(prompt, str):
        raise InvalidRequestError(f"{name} must be a string; got {type(prompt).__name__}.")
    if not prompt.strip():
        raise InvalidRequestError(f"{name} is empty: write what you want to generate.")
    return prompt


def check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be a whole number from {low} to {high}; got {value!r}.")
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be from {low} to {high}; got {value}.")
    return value


def check_float(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidRequestError(f"{name} must be a number from {low} to {high}; got {value!r}.")
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be from {low} to {high}; got {value}.")
    return float(value)


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidRequestError(f"seed must be a whole number; got {seed!r}.")
    if not SEED_MIN <= seed <= SEED_MAX:
        raise InvalidRequestError(f"seed must fit in 64 bits ({SEED_MIN}..{SEED_MAX}); got {seed}.")
    return seed


def image_output_format(value: str) -> str:
    """png | jpeg (or jpg) | webp; the server would silently turn anything else into jpeg."""
    fmt = str(value).lower().strip()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in IMAGE_FORMATS:
        raise InvalidRequestError(f"output format must be one of {', '.join(IMAGE_FORMATS)}; got {value!r}.")
    return fmt


def speech_format(value: str, *, streaming: bool) -> str:
    fmt = str(value).lower().strip()
    if fmt not in SPEECH_FORMATS:
        raise InvalidRequestError(f"speech format must be one of {', '.join(SPEECH_FORMATS)}; got {value!r}.")
    if streaming and fmt not in STREAMING_SPEECH_FORMATS:
        raise InvalidRequestError(f"streamed speech must be wav or pcm (the server refuses {fmt}); got {value!r}.")
    return fmt
