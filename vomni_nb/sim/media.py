"""Pictures that look like diffusion output without a model: deterministic in (prompt, seed, params).

The texture matters more than the subject: smooth colour fields, multi-octave noise, soft shapes and a
fine grain make a 1024x1024 PNG weigh what a real model's does (1-2 MB), so clients, notebooks and
history stores see realistic sizes. A caption panel keeps the prompt, seed and size readable.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import json
import textwrap
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps
from PIL.PngImagePlugin import PngInfo

__all__ = ["FAIL_TOKEN", "render_image", "edit_image", "encode_image", "image_content_type", "a1111_parameters", "seed_from"]

# A prompt or speech input containing this fails its generation (500), so clients can test failure paths.
FAIL_TOKEN = "[[fail]]"
# Grain amplitude (0-255 scale); tuned so a 1024x1024 PNG lands in 1-2 MB like real diffusion output.
GRAIN_SIGMA = 2.0
FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg", "webp": "image/webp"}


def seed_from(*parts: object) -> int:
    """A stable 64-bit seed from any printable values (Python's hash() is salted per process)."""
    digest = hashlib.sha256(json.dumps([repr(p) for p in parts]).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _palette(rng: np.random.Generator, negative_prompt: str | None) -> np.ndarray:
    """Four harmonious colours; a negative prompt pushes the hues away (as it steers a real model)."""
    base = rng.random()
    if negative_prompt:
        base = (base + 0.5 + (seed_from(negative_prompt) % 1000) / 4000.0) % 1.0
    colours = []
    for i in range(4):
        hue = (base + i * rng.uniform(0.08, 0.22)) % 1.0
        sat = rng.uniform(0.35, 0.85)
        val = rng.uniform(0.35, 0.95)
        colours.append(colorsys.hsv_to_rgb(hue, sat, val))
    return np.array(colours, dtype=np.float32) * 255.0


def _noise_field(rng: np.random.Generator, width: int, height: int, cells: int) -> Image.Image:
    """A value-noise field (8-bit): a small random grid upsampled with bicubic interpolation."""
    grid_w = max(2, cells)
    grid_h = max(2, round(cells * height / max(width, 1)))
    grid = (rng.random((grid_h, grid_w)) * 255).astype(np.uint8)
    return Image.fromarray(grid, "L").resize((width, height), Image.Resampling.BICUBIC)


def _field_rows(field: Image.Image, top: int, bottom: int) -> np.ndarray:
    """Rows ``top:bottom`` of a noise field as floats in [0, 1]."""
    return np.asarray(field.crop((0, top, field.width, bottom)), dtype=np.float32) / 255.0


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> np.ndarray:
    """A value-noise field in [0, 1]."""
    return _field_rows(_noise_field(rng, width, height, cells), 0, height)


def _fractal(rng: np.random.Generator, width: int, height: int, octaves: int = 4) -> np.ndarray:
    total = np.zeros((height, width), dtype=np.float32)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * _smooth_noise(rng, width, height, 3 * 2**octave)
        weight += amplitude
        amplitude *= 0.5
    return total / weight


def _shapes(rng: np.random.Generator, canvas: Image.Image, palette: np.ndarray) -> Image.Image:
    """Soft-edged blobs and rings: the 'subject' of the picture."""
    width, height = canvas.size
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(4, 9))):
        cx, cy = rng.random() * width, rng.random() * height
        radius = (0.05 + rng.random() * 0.22) * min(width, height)
        colour = tuple(int(c) for c in palette[int(rng.integers(0, len(palette)))]) + (int(rng.integers(90, 200)),)
        box = (cx - radius, cy - radius * rng.uniform(0.6, 1.4), cx + radius, cy + radius)
        if rng.random() < 0.7:
            draw.ellipse(box, fill=colour)
        else:
            draw.ellipse(box, outline=colour, width=max(1, int(radius / 6)))
    blur = max(1.0, min(width, height) / 120.0)
    return Image.alpha_composite(canvas.convert("RGBA"), layer.filter(ImageFilter.GaussianBlur(blur))).convert("RGB")


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _caption(image: Image.Image, lines: list[str]) -> Image.Image:
    """A translucent panel at the bottom with the given lines; sized to the picture."""
    width, height = image.size
    font_size = max(8, min(28, width // 40))
    font = _font(font_size)
    chars = max(8, int(width / (font_size * 0.55)))
    max_lines = max(1, int(height * 0.45 / (font_size + 3)))
    wrapped: list[str] = []
    for line in lines:
        # Only what fits is wrapped: a 16 MB prompt must not become a million wrapped lines first.
        wrapped.extend(textwrap.wrap(line[: chars * (max_lines + 1)], chars) or [""])
    if len(wrapped) > max_lines:
        wrapped = wrapped[: max_lines - 1] + [wrapped[max_lines - 1][: chars - 1] + "…"]
    panel_h = min(height, len(wrapped) * (font_size + 3) + 8)
    # Only the panel is composited (the rest of the overlay is transparent and would change nothing),
    # so a large picture is not copied four times over.
    panel_box = (0, height - panel_h, width, height)
    overlay = Image.new("RGBA", (width, panel_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, 0, width, panel_h), fill=(0, 0, 0, 150))
    y = 4
    for line in wrapped:
        draw.text((5, y), line, font=font, fill=(255, 255, 255, 255))
        y += font_size + 3
    image = image.convert("RGB") if image.mode != "RGB" else image
    image.paste(Image.alpha_composite(image.crop(panel_box).convert("RGBA"), overlay).convert("RGB"), panel_box[:2])
    return image


def _grain(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    noise = rng.standard_normal(pixels.shape, dtype=np.float32)
    noise *= GRAIN_SIGMA
    noise += pixels
    return noise


def render_image(
    prompt: str,
    *,
    seed: int,
    width: int,
    height: int,
    negative_prompt: str | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    index: int = 0,
) -> Image.Image:
    """A deterministic picture for (prompt, seed, size, params, index) with a caption panel."""
    rng = np.random.default_rng(seed_from("render", prompt, seed, width, height, negative_prompt, steps, guidance, index))
    palette = _palette(rng, negative_prompt)
    # The low-frequency composition is smooth, so it is built at a quarter of the size and upscaled.
    small_w, small_h = max(8, width // 4), max(8, height // 4)
    weights = np.stack([_fractal(rng, small_w, small_h, octaves=3) ** 2 for _ in range(len(palette))], axis=-1)
    weights /= weights.sum(axis=-1, keepdims=True) + 1e-6
    pixels = weights @ palette
    # Gradient light from a seed-chosen direction.
    angle = rng.random() * 2 * np.pi
    ys, xs = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    light = np.cos(angle) * xs / small_w + np.sin(angle) * ys / small_h
    pixels *= (0.75 + 0.35 * (light - light.min()) / (np.ptp(light) + 1e-6))[..., None]
    small = _shapes(rng, Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"), palette)
    image = small.resize((width, height), Image.Resampling.BICUBIC)
    # More steps = a sharper, more finished picture; guidance = contrast (as CFG exaggerates).
    if steps is not None:
        image = ImageEnhance.Sharpness(image).enhance(min(3.0, 0.5 + steps / 20.0))
    if guidance is not None:
        image = ImageEnhance.Contrast(image).enhance(min(2.0, 0.7 + guidance / 10.0))
    coarse = _noise_field(rng, width, height, max(4, width // 80))
    fine = _noise_field(rng, width, height, max(4, width // 20))
    grained = np.empty((height, width, 3), dtype=np.uint8)
    # Detail and grain are made a band of rows at a time, so no full-size float array ever exists:
    # a 33-megapixel picture peaks near 13 bytes a pixel instead of 48 (and the bytes are the same).
    for top, bottom in _bands((width, height)):
        detail = (_field_rows(coarse, top, bottom) - 0.5) * 36.0
        detail += (_field_rows(fine, top, bottom) - 0.5) * 10.0
        band = np.asarray(image.crop((0, top, width, bottom)), dtype=np.float32) + detail[..., None]
        grained[top:bottom] = np.clip(_grain(rng, band), 0, 255)
    del image, coarse, fine
    lines = [prompt, f"seed {seed} · {width}x{height}" + (f" · #{index}" if index else "") + " · vomni-sim"]
    return _caption(Image.fromarray(grained, "RGB"), lines)


def edit_image(
    source: Image.Image,
    prompt: str,
    *,
    seed: int,
    width: int | None = None,
    height: int | None = None,
    index: int = 0,
) -> Image.Image:
    """The source, restyled by (prompt, seed): recoloured, posterised, tinted, with the instruction on it."""
    target = (width or source.width, height or source.height)
    rng = np.random.default_rng(seed_from("edit", prompt, seed, target, index))
    hsv = ImageOps.exif_transpose(source).convert("RGB").resize(target, Image.Resampling.LANCZOS).convert("HSV")
    # A hue rotation keyed on the instruction keeps the source recognisable but visibly changed.
    # Per-pixel work runs a band of rows at a time (see render_image); the bytes are the same as whole.
    hue_shift, saturation = int(rng.integers(40, 216)), rng.uniform(1.1, 1.6)
    shifted = np.empty((target[1], target[0], 3), dtype=np.uint8)
    for top, bottom in _bands(target):
        band = np.asarray(hsv.crop((0, top, target[0], bottom)), dtype=np.int16).copy()
        band[..., 0] = (band[..., 0] + hue_shift) % 256
        band[..., 1] = np.clip(band[..., 1] * saturation + 20, 0, 255)
        shifted[top:bottom] = band
    del hsv
    image = Image.fromarray(shifted, "HSV").convert("RGB")
    del shifted
    image = ImageOps.posterize(image, int(rng.integers(3, 6)))
    image = image.filter(ImageFilter.SMOOTH_MORE)
    tint = _palette(rng, None)[0]
    grained = np.empty((target[1], target[0], 3), dtype=np.uint8)
    for top, bottom in _bands(target):
        pixels = np.asarray(image.crop((0, top, target[0], bottom)), dtype=np.float32) * 0.8 + tint * 0.2
        grained[top:bottom] = np.clip(_grain(rng, pixels), 0, 255)
    del image
    lines = [f"edit: {prompt}", f"seed {seed} · {target[0]}x{target[1]}" + (f" · #{index}" if index else "")]
    return _caption(Image.fromarray(grained, "RGB"), lines)


def _bands(size: tuple[int, int]) -> list[tuple[int, int]]:
    """(top, bottom) row ranges of about a megapixel each."""
    width, height = size
    rows = max(1, (1 << 20) // max(1, width))
    return [(top, min(height, top + rows)) for top in range(0, height, rows)]


def a1111_parameters(recipe: dict[str, Any]) -> str:
    """The ``parameters`` text other image tools write: prompt, negative prompt, then ``Key: value`` pairs."""
    lines = [str(recipe.get("prompt", ""))]
    if recipe.get("negative_prompt"):
        lines.append(f"Negative prompt: {recipe['negative_prompt']}")
    names = {"steps": "Steps", "guidance": "CFG scale", "seed": "Seed", "model": "Model"}
    pairs = [f"{label}: {recipe[key]}" for key, label in names.items() if recipe.get(key) is not None]
    if recipe.get("width") and recipe.get("height"):
        pairs.insert(len(pairs) - (1 if recipe.get("model") else 0), f"Size: {recipe['width']}x{recipe['height']}")
    if pairs:
        lines.append(", ".join(pairs))
    return "\n".join(lines)


def encode_image(image: Image.Image, fmt: str, *, compression: int = 100, recipe: dict[str, Any] | None = None) -> bytes:
    """PNG (lossless, recipe in text chunks), JPEG or WEBP (``compression`` = quality 0-100)."""
    kind = FORMATS.get(fmt.lower())
    if kind is None:
        raise ValueError(f"unsupported image format {fmt!r}")
    buffer = io.BytesIO()
    if kind == "PNG":
        info = PngInfo()
        if recipe is not None:
            info.add_text("parameters", a1111_parameters(recipe))
            info.add_text("vomni_nb", json.dumps(recipe, sort_keys=True, default=str))
        # Level 1: the size is dominated by the grain anyway, and level 6 costs 3x the time.
        image.save(buffer, "PNG", pnginfo=info, compress_level=1)
    elif kind == "JPEG":
        image.convert("RGB").save(buffer, "JPEG", quality=max(1, min(100, compression)))
    else:
        image.save(buffer, "WEBP", quality=max(0, min(100, compression)))
    return buffer.getvalue()


def image_content_type(fmt: str) -> str:
    return CONTENT_TYPES.get(fmt.lower(), "image/jpeg")
