"""The simulated assistant: a deterministic, obviously simulated reply that describes its inputs.

Pure functions only. The reply depends on (messages, seed) and nothing else, so a notebook rerun
with the same seed streams the same words.
"""

from __future__ import annotations

import base64
import binascii
import io
import random
import re
import struct
import wave
from typing import Any

from PIL import Image

from vomni_nb.sim import inputs
from vomni_nb.sim.limits import LimitExceeded, Limits

__all__ = ["compose_reply", "describe_part", "split_tokens", "count_tokens", "user_text", "all_text"]

_FILLER = (
    "A real model would answer this in its own words; this server only simulates the protocol.",
    "The reply streams at the rate set by --tokens-per-second, so clients can test live output.",
    "Same messages and seed give the same reply, word for word.",
    "Change the seed to get a different, equally simulated answer.",
    "Audio, images and usage numbers follow vLLM-Omni's wire format exactly.",
    "Nothing here was computed by a neural network.",
)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_COLOUR_NAMES = {
    "red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 200), "yellow": (220, 200, 40),
    "orange": (230, 130, 30), "purple": (130, 50, 160), "white": (240, 240, 240), "black": (15, 15, 15),
    "grey": (128, 128, 128), "brown": (120, 80, 40), "pink": (230, 140, 170), "cyan": (40, 190, 200),
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content")).strip()
    return ""


def all_text(messages: list[dict[str, Any]]) -> str:
    return " ".join(_text_of(m.get("content")) for m in messages)


def count_tokens(text: str) -> int:
    """A stand-in tokenizer: words and punctuation marks (counted without building a list of them)."""
    return sum(1 for _ in _TOKEN.finditer(text))


def split_tokens(text: str) -> list[str]:
    """Stream pieces: each word with the space before it, so ''.join(pieces) == text."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def _nearest_colour(rgb: tuple[int, int, int]) -> str:
    return min(_COLOUR_NAMES, key=lambda name: sum((a - b) ** 2 for a, b in zip(_COLOUR_NAMES[name], rgb)))


def _data_url_bytes(url: str) -> bytes | None:
    if not url.startswith("data:") or "," not in url:
        return None
    try:
        return base64.b64decode(url.split(",", 1)[1])
    except (binascii.Error, ValueError):
        return None


def describe_image(data: bytes, limits: Limits) -> str:
    """Size and mean colour; an image too large to decode is refused from its header (LimitExceeded)."""
    try:
        image = inputs.open_image(data, limits)
    except LimitExceeded:
        raise
    except ValueError:
        return f"an attachment of {len(data)} bytes that is not a readable image"
    with image:
        width, height = image.size
        mean = image.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))
    r, g, b = (int(v) for v in mean)  # type: ignore[union-attr]
    return f"a {width}x{height} image whose mean colour is #{r:02x}{g:02x}{b:02x} (mostly {_nearest_colour((r, g, b))})"


def describe_audio(data: bytes) -> str:
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getframerate() > 0:  # a header may say 0 Hz
                seconds = wav.getnframes() / float(wav.getframerate())
                return f"{seconds:.2f} s of audio ({wav.getframerate()} Hz, {wav.getnchannels()} channel(s))"
    except (wave.Error, EOFError, struct.error, ValueError, OverflowError):
        pass
    return f"an audio clip of {len(data)} bytes (not WAV, so its length was not measured)"


def _field(part: dict[str, Any], key: str, inner: str) -> str:
    """``part[key][inner]`` as a string, whatever shape a client sent."""
    value = part.get(key)
    return str(value.get(inner, "")) if isinstance(value, dict) else ""


def describe_part(part: dict[str, Any], limits: Limits | None = None) -> str | None:
    """One line about a non-text content part, or None for text parts."""
    kind = part.get("type")
    if kind == "image_url":
        url = _field(part, "image_url", "url")
        data = _data_url_bytes(url)
        if data is None:
            return f"an image at {url[:60]} (the simulator does not fetch URLs)"
        return describe_image(data, limits or Limits())
    if kind == "input_audio":
        try:
            data = base64.b64decode(_field(part, "input_audio", "data"))
        except (binascii.Error, ValueError):
            return "an input_audio part whose data is not valid base64"
        return describe_audio(data)
    if kind == "audio_url":
        url = _field(part, "audio_url", "url")
        data = _data_url_bytes(url)
        return describe_audio(data) if data is not None else f"audio at {url[:60]} (not fetched)"
    if kind == "video_url":
        return "a video (the simulator does not decode video input)"
    return None


MAX_DESCRIBED = 8  # attachments decoded and described; the rest are only counted


def describe_inputs(messages: list[dict[str, Any]], limits: Limits | None = None) -> list[str]:
    found: list[str] = []
    skipped = 0
    for message in messages:
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict) or part.get("type") in (None, "text"):
                continue
            if len(found) >= MAX_DESCRIBED:
                skipped += 1
                continue
            described = describe_part(part, limits)
            if described:
                found.append(described)
    if skipped:
        found.append(f"{skipped} more attachment(s)")
    return found


def compose_reply(messages: list[dict[str, Any]], seed: int | None, model: str, limits: Limits | None = None,
                  length: int | None = None) -> str:
    """``[vomni-sim] ...``: what was asked, what came with it, and a few seeded filler sentences; with
    ``length`` (``--reply-tokens``), more seeded filler until the reply is exactly that many stream tokens."""
    asked = user_text(messages)
    shown = asked if len(asked) <= 160 else asked[:157] + "..."
    parts = [f"[vomni-sim] Simulated reply from {model}."]
    parts.append(f'You asked: "{shown}".' if shown else "Your message had no text.")
    attached = describe_inputs(messages, limits)
    if attached:
        parts.append("You sent " + "; ".join(attached) + ".")
    rng = random.Random(f"{seed}|{all_text(messages)}|{len(attached)}")
    parts.extend(rng.sample(_FILLER, k=3))
    text = " ".join(parts)
    if length is None:
        return text
    pieces = split_tokens(text)
    while len(pieces) < length:
        pieces += split_tokens(" " + rng.choice(_FILLER))
    return "".join(pieces[:length])
