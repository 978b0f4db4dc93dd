"""families.py: known ids match exactly as the hub spells them; only the documented patterns match beyond them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vomni_nb.sim.families import KNOWN_MODELS, PATTERNS, Family, ModelMatch, close_ids, family_of, match_model

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("model", sorted(KNOWN_MODELS))
def test_every_known_id_matches_exactly_and_not_through_a_pattern(model: str) -> None:
    assert match_model(model) == ModelMatch(KNOWN_MODELS[model], None)


@pytest.mark.parametrize(
    "typo",
    [
        "Tongyi-MAI/Z-Image-Turb",  # issue 7 item 19: a prefix of a known id used to start fine
        "tongyi-mai/z-image-turbo",  # the hub's spelling is the id
        "Tongyi-MAI/Z-Image-Turbo ",
        "Qwen/Qwen-Image-Edt",
        "Qwen/qwen3-tts-12hz-1.7b-customvoice",
        "Qwen/Qwen3-Omni",
        "Wan-AI/Wan3-T2V",
        "my-org/my-finetune",
    ],
)
def test_misspelt_and_unknown_ids_are_not_served(typo: str) -> None:
    assert match_model(typo) is None and family_of(typo) is None


@pytest.mark.parametrize(
    ("model", "family", "pattern"),
    [
        ("Qwen/Qwen3-TTS-12Hz-0.6B-VoiceDesign", Family.TTS, "Qwen/Qwen3-TTS-*"),
        ("Qwen/Qwen3-TTS-25Hz-1.7B-CustomVoice", Family.TTS, "Qwen/Qwen3-TTS-*"),
        ("Wan-AI/Wan2.1-T2V-14B-Diffusers", Family.VIDEO, "Wan-AI/Wan2.*"),
    ],
)
def test_documented_patterns_say_which_pattern_matched(model: str, family: Family, pattern: str) -> None:
    assert match_model(model) == ModelMatch(family, pattern)


def test_a_typo_gets_the_id_it_was_probably_meant_as() -> None:
    assert close_ids("Tongyi-MAI/Z-Image-Turb") == ["Tongyi-MAI/Z-Image-Turbo"]
    assert close_ids("tongyi-mai/z-image-turbo") == ["Tongyi-MAI/Z-Image-Turbo"]
    assert close_ids("nobody/no-such-model") == []


def test_the_readme_table_lists_every_known_id_and_pattern() -> None:
    text = README.read_text()
    table = text[text.index("| family |"):]
    table = table[: table.index("\n\n")]
    listed = set(re.findall(r"`([^`/][^`]*/[^`]+)`", table))  # ids, not /v1 paths
    assert listed == set(KNOWN_MODELS) | {pattern for pattern, _ in PATTERNS}
