"""The SSE stream of an omni chat completion, framed and ordered like vLLM-Omni 0.30.0 (reference §3.5).

Chunks are compact JSON in field order ``id, object, created, model, choices, usage, ...,
prompt_token_ids, prompt_text, metrics, modality``, holding only the keys the server sets
(``exclude_unset``); the include_usage chunk and a fallback stop chunk have no ``modality``.
The stream always ends with ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from vomni_nb.sim import faults
from vomni_nb.sim.chat_audio import audio_chunks

__all__ = ["OmniStream", "sse", "DONE"]

DONE = "data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> str:
    """One event as pydantic's ``model_dump_json`` writes it: compact, UTF-8 kept."""
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n"


@dataclasses.dataclass
class OmniStream:
    request_id: str
    model: str
    modalities: list[str]
    audio_format: str
    tokens: list[str]
    finish: str
    prompt_tokens: int
    include_usage: bool
    tokens_per_second: float
    voice: str | None
    seed: int
    error_after: int | None = None
    n: int = 1
    continuous_usage: bool = False  # stream_options.continuous_usage_stats (with include_usage)
    created: int = dataclasses.field(default_factory=lambda: int(time.time()))

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.request_id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices, **extra,
        }

    def _text_events(self) -> list[tuple[str, bool]]:
        """(event, paced) pairs for the text part; paced events wait one token interval first.

        Delta and audio chunks set ``metrics`` explicitly (SC L2147, L2239): ``{}`` while no stage has
        reported, null on a stage's finishing output (its stage event makes the dict non-empty, and
        without ``return_stage_metrics`` the detail is filtered to None).
        """
        events: list[tuple[str, bool]] = []
        last_owner = "text" if "audio" not in self.modalities else "audio"
        # With continuous usage stats even the role chunk carries usage (completion_tokens 0).
        first_usage: dict[str, Any] = {"usage": self._usage(0)} if self.continuous_usage else {}
        for index in range(self.n):
            first = {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                     "finish_reason": None}
            events.append((sse(self._chunk([first], **first_usage, prompt_token_ids=None, prompt_text=None,
                                           modality="text")), False))
        for position, token in enumerate(self.tokens):
            last = position == len(self.tokens) - 1
            extra: dict[str, Any] = {"usage": self._usage(position + 1)} if self.continuous_usage else {}
            for index in range(self.n):
                choice: dict[str, Any] = {"index": index, "delta": {"content": token}, "logprobs": None,
                                          "finish_reason": None}
                if last:
                    # The engine's last text output sets stop_reason explicitly, so exclude_unset keeps
                    # it; finish_reason stays null there while audio is still to come.
                    choice["finish_reason"] = self.finish if last_owner == "text" else None
                    choice["stop_reason"] = None
                choice["token_ids"] = None
                metrics: dict[str, Any] | None = None if last else {}
                events.append((sse(self._chunk([choice], **extra, metrics=metrics, modality="text")), index == 0))
        if not self.tokens and last_owner == "text":
            for index in range(self.n):  # the fallback stop chunk: no modality key, nothing but these set
                choice = {"index": index, "delta": {}, "finish_reason": "stop"}
                events.append((sse(self._chunk([choice])), False))
        return events

    def _usage(self, completion: int) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens + completion,
                "completion_tokens": completion}

    def _audio_events(self) -> list[str]:
        text = "".join(self.tokens) or "."
        pieces = audio_chunks(text, self.audio_format, self.voice, self.seed)
        usage = {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens, "completion_tokens": 0}
        events = []
        for position, piece in enumerate(pieces):
            final = position == len(pieces) - 1
            for index in range(self.n):
                choice = {
                    "index": index,
                    "delta": {"role": "assistant", "content": base64.b64encode(piece.data).decode()},
                    "logprobs": None, "finish_reason": "stop" if final else None, "stop_reason": None,
                    "token_ids": None, "audio_metadata": piece.metadata(),
                }
                events.append(sse(self._chunk([choice], usage=usage, metrics=None if final else {}, modality="audio")))
        return events

    def _usage_event(self) -> str:
        completion = len(self.tokens) * self.n if "text" in self.modalities else 0
        usage = {"prompt_tokens": self.prompt_tokens, "total_tokens": self.prompt_tokens + completion,
                 "completion_tokens": completion}
        return sse(self._chunk([], usage=usage))

    async def events(self, request: Request) -> AsyncIterator[str]:
        finished = False
        sent = 0
        interval = 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0
        loop = asyncio.get_running_loop()
        due = loop.time()
        try:
            plan: list[tuple[str, bool]] = self._text_events() if "text" in self.modalities else []
            for event, paced in plan:
                if self.error_after is not None and sent >= self.error_after:
                    yield faults.stream_error_event(faults.MIDSTREAM_MESSAGE)
                    yield DONE
                    finished = True
                    return
                if paced and interval:
                    # Pace against a schedule, not per sleep, so overheads do not slow the set rate.
                    due += interval
                    await asyncio.sleep(max(0.0, due - loop.time()))
                yield event
                sent += 1
            if "audio" in self.modalities:
                for event in await asyncio.to_thread(self._audio_events):
                    if self.error_after is not None and sent >= self.error_after:
                        yield faults.stream_error_event(faults.MIDSTREAM_MESSAGE)
                        yield DONE
                        finished = True
                        return
                    yield event
                    sent += 1
            if self.include_usage:
                yield self._usage_event()
            yield DONE
            finished = True
        finally:
            if not finished:
                faults.log_abort(self.request_id)
