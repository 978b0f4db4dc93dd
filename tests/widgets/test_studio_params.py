"""The Studio's form as data (pure functions), and the Studio object without a kernel: bad input is refused
with a message naming the field before anything is sent, seeds are consecutive and lockable, a history
record restores its form, and the picker offers only image models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vomni_nb.errors import InvalidRequestError
from vomni_nb.provenance import Provenance
from vomni_nb.server import ServerManager
from vomni_nb.widgets import Studio
from vomni_nb.widgets._studio_params import (StudioParams, check_params, image_kwargs, makes_images, params_of_record,
                                             seeds_for)

FORM = {"prompt": "a cat", "negative": "", "size": "1024x1024", "steps": None, "guidance": None, "seed": "",
        "seed_locked": False, "count": 1}


def test_a_good_form_is_checked_into_params() -> None:
    params = check_params({**FORM, "prompt": "  a cat  ", "size": "768 × 512", "steps": "12", "guidance": 3.5,
                           "seed": "42", "seed_locked": True, "count": 3})
    assert params == StudioParams(prompt="a cat", size="768x512", steps=12, guidance=3.5, seed=42, seed_locked=True,
                                  count=3)


@pytest.mark.parametrize("change, message", [
    ({"prompt": "   "}, "Write a prompt first"),
    ({"size": "1024"}, "size takes WIDTHxHEIGHT"),
    ({"size": "32x32"}, "each at least 64"),
    ({"steps": 0}, "steps takes 1 to 200"),
    ({"steps": 2.5}, "steps takes a whole number"),
    ({"steps": "many"}, "steps takes a number"),
    ({"guidance": 21}, "guidance takes 0 to 20"),
    ({"seed": -1}, "seed takes 0 to 2**63-1"),
    ({"seed": True}, "seed takes a number"),
    ({"count": 0}, "count takes 1 to 16"),
    ({"count": 17}, "count takes 1 to 16"),
])
def test_a_bad_field_is_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message.replace("*", r"\*")):
        check_params({**FORM, **change})


def test_seeds_are_consecutive_locked_or_drawn() -> None:
    locked = StudioParams(prompt="x", seed=10, seed_locked=True, count=3)
    assert seeds_for(locked) == [10, 11, 12]
    unlocked = StudioParams(prompt="x", seed=10, seed_locked=False, count=2)
    assert seeds_for(unlocked, draw=lambda: 500) == [500, 501]
    assert all(0 <= seed < 2**32 for seed in seeds_for(StudioParams(prompt="x", count=4)))


def test_image_kwargs_leave_model_defaults_unsent() -> None:
    assert image_kwargs(StudioParams(prompt="x"), 7) == {"prompt": "x", "size": "1024x1024", "seed": 7}
    full = StudioParams(prompt="x", negative="blur", size="512x512", steps=4, guidance=2.0)
    assert image_kwargs(full, 7) == {"prompt": "x", "size": "512x512", "seed": 7, "negative": "blur", "steps": 4,
                                     "guidance": 2.0}


def test_a_record_restores_its_form_with_the_seed_locked() -> None:
    record = Provenance(kind="image", model="Qwen/Qwen-Image", prompt="a fox", seed=777, params={
        "prompt": "a fox", "size": "768x768", "num_inference_steps": 12, "guidance_scale": 3.5,
        "negative_prompt": "blurry", "seed": 777}).to_record()
    assert params_of_record(record) == {"prompt": "a fox", "negative": "blurry", "size": "768x768", "steps": 12,
                                        "guidance": 3.5, "seed": "777", "seed_locked": True,
                                        "model": "Qwen/Qwen-Image"}
    assert params_of_record({"prompt": "p"})["seed_locked"] is False


@pytest.mark.parametrize("model, makes", [
    ("Tongyi-MAI/Z-Image-Turbo", True), ("Qwen/Qwen-Image-2512", True), ("black-forest-labs/FLUX.1-dev", True),
    ("stabilityai/stable-diffusion-3.5-medium", True), ("Qwen/Qwen-Image-Edit-2509", False),
    ("Qwen/Qwen3-Omni-30B-A3B-Instruct", False), ("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice", False),
    ("Wan-AI/Wan2.2-TI2V-5B-Diffusers", False), ("", False), (None, False),
])
def test_the_picker_offers_image_models_only(model: str | None, makes: bool) -> None:
    assert makes_images(model) is makes


def _studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> Studio:
    monkeypatch.setenv("VOMNI_HISTORY", "off")  # a Studio's default store would be the user's own history
    manager = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False)
    return Studio(manager=manager, save_dir=tmp_path / "saved", live=False, **kwargs)  # type: ignore[arg-type]


def test_studio_refuses_bad_settings_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidRequestError, match="count takes 1 to 16"):
        _studio(tmp_path, monkeypatch, count=40)
    studio = _studio(tmp_path, monkeypatch, prompt="a cat", server="http://127.0.0.1:9/")
    assert repr(studio) == "Studio(idle, server='http://127.0.0.1:9', 0 image(s))"
    with pytest.raises(InvalidRequestError, match="takes prompt, negative"):
        studio.generate(promt="typo")
    with pytest.raises(InvalidRequestError, match="kernel's event loop"):
        studio.generate()  # no running loop here: nothing is started, nothing is sent
    assert studio.cancel() is False
    with pytest.raises(InvalidRequestError, match="No result -1"):
        studio.pin()


def test_studio_without_an_image_server_says_how_to_start_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    studio = _studio(tmp_path, monkeypatch, prompt="a cat")

    async def attempt() -> None:
        studio.generate()

    with pytest.raises(InvalidRequestError, match="%omni_server start MODEL"):
        asyncio.run(attempt())
    text = studio._static()["text/plain"]
    assert text.startswith("Studio (no widget front end here) · no image server")
    assert "history is off: Pin or Save an image to keep it" in text
