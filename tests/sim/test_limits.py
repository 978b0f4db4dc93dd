"""Every limit is a flag with a default, listed in the README; repeated log lines are rate-limited."""

from __future__ import annotations

import re
from pathlib import Path

from vomni_nb.sim import cli
from vomni_nb.sim.families import Family
from vomni_nb.sim.limits import LIMIT_FLAGS, Limits
from vomni_nb.sim.lograte import RepeatLimiter, mask

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_limit_is_a_flag_listed_in_the_readme_with_its_default() -> None:
    defaults = Limits()
    table = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(--[a-z-]+)` \| ([0-9.]+)", README, re.MULTILINE)}
    for flag, field, _, _ in LIMIT_FLAGS:
        assert flag in table, f"{flag} is missing from the README's limits table"
        assert float(table[flag]) == float(getattr(defaults, field)), flag
    assert {field for _, field, _, _ in LIMIT_FLAGS} == {f.name for f in Limits.__dataclass_fields__.values()}


def test_flags_reach_the_config() -> None:
    args = cli.build_parser().parse_args(
        ["Tongyi-MAI/Z-Image-Turbo", "--max-side", "64", "--body-timeout", "2.5", "--allowed-origins", '["http://a"]']
    )
    config = cli.config_from_args(args, Family.IMAGE)
    assert config.limits.max_side == 64 and config.limits.body_timeout == 2.5
    assert config.allowed_origins == ("http://a",)
    assert cli.config_from_args(cli.build_parser().parse_args(["Tongyi-MAI/Z-Image-Turbo"]),
                                Family.IMAGE).allowed_origins == ()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_repeat_limiter_counts_what_it_holds_back() -> None:
    clock = Clock()
    limiter = RepeatLimiter(3, window=10.0, clock=clock)
    assert [limiter.check("kind") for _ in range(5)] == [(True, 0)] * 3 + [(False, 0)] * 2
    assert limiter.check("other") == (True, 0)  # kinds are limited separately
    clock.now += 10.0
    assert limiter.check("kind") == (True, 2)  # the next window's first line reports the two suppressed


def test_repeat_limiter_caps_all_kinds_together() -> None:
    limiter = RepeatLimiter(2, window=10.0, clock=Clock())
    allowed = sum(limiter.check(f"kind-{n}")[0] for n in range(100))
    assert allowed == 20  # ten times the per-kind limit


def test_masked_messages_are_one_kind() -> None:
    assert mask("[AsyncOmni] Request chatcmpl-9f8e7d6c5b4a aborted.") == mask("[AsyncOmni] Request chatcmpl-0123456789ab aborted.")
    assert mask("Route: /v1/models") != mask("Route: /health")
