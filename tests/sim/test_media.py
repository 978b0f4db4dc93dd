"""media.py: deterministic pictures with the texture and weight of diffusion output."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from vomni_nb.sim import media


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_same_arguments_give_identical_bytes() -> None:
    first = media.encode_image(media.render_image("a lighthouse", seed=7, width=96, height=64), "png")
    second = media.encode_image(media.render_image("a lighthouse", seed=7, width=96, height=64), "png")
    assert first == second


@pytest.mark.parametrize(
    "change",
    [
        {"seed": 8},
        {"prompt": "a lighthouse at night"},
        {"negative_prompt": "blurry"},
        {"steps": 50},
        {"guidance": 9.0},
        {"index": 1},
    ],
)
def test_every_parameter_changes_the_picture(change: dict[str, object]) -> None:
    base: dict[str, object] = {"prompt": "a lighthouse", "seed": 7, "width": 96, "height": 64}
    a = pixels(media.render_image(**base))  # type: ignore[arg-type]
    b = pixels(media.render_image(**{**base, **change}))  # type: ignore[arg-type]
    assert np.abs(a - b).mean() > 3.0


def test_size_is_exact_and_not_a_flat_fill() -> None:
    image = media.render_image("fields of colour", seed=1, width=200, height=120)
    assert image.size == (200, 120) and image.mode == "RGB"
    array = pixels(image)
    assert array.std() > 10  # colour fields, shapes and grain, not one colour
    assert len(np.unique(array.reshape(-1, 3), axis=0)) > 5000


def test_a_1024_png_weighs_what_a_diffusion_png_does() -> None:
    image = media.render_image("a red fox in the snow at golden hour", seed=42, width=1024, height=1024)
    data = media.encode_image(image, "png")
    assert 1_000_000 <= len(data) <= 2_000_000, len(data)


def test_caption_panel_is_darker_than_the_picture() -> None:
    array = pixels(media.render_image("x", seed=3, width=400, height=400)).mean(axis=2)
    bottom_rows = array[-8:-4]  # inside the translucent panel (text is only on part of it)
    assert np.median(bottom_rows) < np.median(array[:200]) - 20


def test_png_carries_the_recipe() -> None:
    recipe = {"prompt": "a cat", "negative_prompt": "dogs", "steps": 8, "guidance": 3.5, "seed": 11,
              "width": 64, "height": 64, "model": "Tongyi-MAI/Z-Image-Turbo"}
    data = media.encode_image(media.render_image("a cat", seed=11, width=64, height=64), "png", recipe=recipe)
    info = Image.open(io.BytesIO(data)).text  # type: ignore[attr-defined]
    assert info["parameters"] == (
        "a cat\nNegative prompt: dogs\nSteps: 8, CFG scale: 3.5, Seed: 11, Size: 64x64, Model: Tongyi-MAI/Z-Image-Turbo"
    )
    assert json.loads(info["vomni_nb"]) == recipe


@pytest.mark.parametrize(("fmt", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("jpg", "JPEG"), ("webp", "WEBP")])
def test_formats_decode(fmt: str, pil_format: str) -> None:
    data = media.encode_image(media.render_image("x", seed=1, width=48, height=32), fmt, compression=80)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == pil_format and decoded.size == (48, 32)
    assert media.image_content_type(fmt).startswith("image/")


def test_lower_compression_makes_smaller_jpegs() -> None:
    image = media.render_image("x", seed=1, width=256, height=256)
    assert len(media.encode_image(image, "jpeg", compression=20)) < len(media.encode_image(image, "jpeg", compression=95))


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported image format"):
        media.encode_image(media.render_image("x", seed=1, width=8, height=8), "gif")


def test_edit_is_derived_from_its_source() -> None:
    source_a = media.render_image("source a", seed=1, width=128, height=96)
    source_b = media.render_image("source b", seed=2, width=128, height=96)
    edit_a = pixels(media.edit_image(source_a, "make it winter", seed=5)).mean(axis=2)
    edit_a2 = pixels(media.edit_image(source_a, "make it autumn", seed=5)).mean(axis=2)
    edit_b = pixels(media.edit_image(source_b, "make it winter", seed=5)).mean(axis=2)
    gray_a = pixels(source_a).mean(axis=2)
    top = slice(0, 60)  # above the caption
    related = np.corrcoef(gray_a[top].ravel(), edit_a[top].ravel())[0, 1]
    unrelated = np.corrcoef(gray_a[top].ravel(), edit_b[top].ravel())[0, 1]
    assert related > unrelated + 0.2
    assert np.abs(edit_a - edit_a2).mean() > 3.0  # the instruction changes the result
    assert not np.array_equal(pixels(source_a), pixels(media.edit_image(source_a, "make it winter", seed=5)))


def test_edit_resizes_and_is_deterministic() -> None:
    source = media.render_image("s", seed=1, width=64, height=64)
    first = media.edit_image(source, "sharper", seed=2, width=80, height=48)
    assert first.size == (80, 48)
    assert media.encode_image(first, "png") == media.encode_image(
        media.edit_image(source, "sharper", seed=2, width=80, height=48), "png"
    )
