"""``--reply-tokens N``: chat replies of exactly N stream tokens (seeded filler), for long-stream benchmarks."""

from __future__ import annotations

import json

import httpx
import pytest

from vomni_nb.sim.chat_text import compose_reply, split_tokens
from vomni_nb.sim.cli import build_parser
from tests.support.sims import OMNI_MODEL

MESSAGES = [{"role": "user", "content": "Tell me about lighthouses."}]


def test_a_reply_is_padded_or_cut_to_the_length_asked_and_stays_seeded() -> None:
    short = compose_reply(MESSAGES, 3, "m")
    long = compose_reply(MESSAGES, 3, "m", length=5000)
    assert len(split_tokens(long)) == 5000
    assert long.startswith(short)  # the usual reply first, then filler
    assert long == compose_reply(MESSAGES, 3, "m", length=5000)
    assert long != compose_reply(MESSAGES, 4, "m", length=5000)
    assert compose_reply(MESSAGES, 3, "m", length=4) == "".join(split_tokens(short)[:4])


@pytest.mark.parametrize("value", ["0", "-3", "1000001", "many"])
def test_the_length_is_bounded(value: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([OMNI_MODEL, "--reply-tokens", value])


def test_a_real_server_streams_that_many_tokens(start_sim) -> None:  # type: ignore[no-untyped-def]
    sim = start_sim(OMNI_MODEL, "--reply-tokens", "400", "--tokens-per-second", "0")
    body = {"messages": MESSAGES, "modalities": ["text"], "seed": 1}
    whole = httpx.post(sim.url + "/v1/chat/completions", json=body, timeout=30).json()
    pieces = []
    with httpx.stream("POST", sim.url + "/v1/chat/completions", json={**body, "stream": True}, timeout=30) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    if choice["delta"].get("content"):
                        pieces.append(choice["delta"]["content"])
    assert len(pieces) == 400
    assert "".join(pieces) == whole["choices"][0]["message"]["content"]
    assert whole["usage"]["completion_tokens"] >= 400
