"""The capability table: what each model id can do, held in step with the simulator's own table."""

from __future__ import annotations

import pytest

from vomni_nb.protocol import capabilities as C
from vomni_nb.sim import families as sim_families
from tests.support.sims import EDIT_MODEL, IMAGE_MODEL, OMNI_MODEL, TTS_MODEL, VIDEO_MODEL

SIM_FAMILY_TASK = {"image": "image", "omni": "chat", "tts": "speech", "video": "video"}


def test_the_client_table_agrees_with_the_simulator_s() -> None:
    # Two tables written apart (the simulator imports nothing of the client): the same ids, the same families.
    assert set(C.KNOWN_MODELS) == set(sim_families.KNOWN_MODELS)
    for model, family in sim_families.KNOWN_MODELS.items():
        assert C.family_of(model) == family.value, model
        assert SIM_FAMILY_TASK[family.value] in (C.tasks_for(model) or ()), model
    assert [pattern for pattern, _ in C.PATTERNS] == [pattern for pattern, _ in sim_families.PATTERNS]
    for model in ("Qwen/Qwen3-TTS-12Hz-4B-Base", "Wan-AI/Wan2.5-T2V"):
        assert C.family_of(model) == sim_families.family_of(model).value  # type: ignore[union-attr]


@pytest.mark.parametrize(("model", "tasks"), [
    (IMAGE_MODEL, {"image"}),
    (EDIT_MODEL, {"image", "edit"}),
    (OMNI_MODEL, {"chat"}),
    (TTS_MODEL, {"speech"}),
    (VIDEO_MODEL, {"video"}),
])
def test_tasks_for_known_ids(model: str, tasks: set[str]) -> None:
    assert C.tasks_for(model) == tasks and set(tasks) <= set(C.TASKS)


def test_unknown_ids_are_not_guessed() -> None:
    # A --served-model-name, a typo, another case: "don't know", so the client asks the server instead.
    for model in ("my-voice", "Tongyi-MAI/Z-Image-Turb", "tongyi-mai/z-image-turbo", "", None):
        assert C.tasks_for(model) is None and C.answers(model, "image") is None and C.capability(model) is None


def test_answers_is_broader_than_what_a_model_is_for() -> None:
    # 0.30.0 answers chat (pictures) and edits (image-to-image) on every diffusion image model: never refused.
    assert C.answers(IMAGE_MODEL, "chat") and C.answers(IMAGE_MODEL, "edit") and not C.answers(IMAGE_MODEL, "speech")
    assert not C.answers(OMNI_MODEL, "image") and not C.answers(TTS_MODEL, "chat") and not C.answers(VIDEO_MODEL, "chat")


def test_tts_variants() -> None:
    assert C.tts_variant("Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice") == "CustomVoice"
    assert C.tts_variant("Qwen/Qwen3-TTS-12Hz-1.7B-VoiceDesign") == "VoiceDesign"
    assert C.tts_variant("Qwen/Qwen3-TTS-12Hz-0.6B-Base") == "Base"
    assert C.tts_variant(IMAGE_MODEL) is None and C.tts_variant("some/Base") is None and C.tts_variant(None) is None
    for model in sim_families.KNOWN_MODELS:  # the simulator reads the variant the same way
        from vomni_nb.sim.voices import tts_variant

        if C.family_of(model) == "tts":
            assert C.tts_variant(model) == tts_variant(model), model
