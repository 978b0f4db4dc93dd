"""Per-request cost of OmniClient against raw httpx and the openai SDK, on the same vomni-sim.

For a 512x512 image, a 1024x1024 image and a non-streamed chat answer, the ways run interleaved (rotating
who goes first, so drift hits all alike): raw httpx (post, JSON, base64 decode: the baseline), OmniClient
without history (the client alone), OmniClient as users get it (every result recorded in the history,
with its file), and the openai SDK: wall time per request, and this process's CPU time per request (the
client's own work; the simulator runs in its own process, so its noise stays out). A last pair runs
in-process (httpx.MockTransport, no server) to show the client's own microseconds per request. The issue's
target: OmniClient within 3% of raw httpx.

    .venv/bin/python benchmarks/client_overhead.py [--quick]
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

import _harness as harness
from _harness import IMAGE_MODEL, OMNI_MODEL, Row

PROMPT = "a lighthouse at dusk"
MESSAGES = [{"role": "user", "content": "Describe a lighthouse at dusk."}]


def _image_ways(url: str, size: str, history: Path) -> tuple[dict[str, Callable[[], bytes]], list[object]]:
    from openai import OpenAI

    from vomni_nb import HistoryStore, OmniClient

    raw = httpx.Client(timeout=120)
    bare = OmniClient(url, history=False)
    store = HistoryStore(history)
    recorded = OmniClient(url, history=store)
    sdk = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    # Each way asks for seeds 1, 2, 3, ... in turn: the same images for every way (the same work for the
    # server), and a new file each time for the history (its store keeps one copy of identical files).
    seeds = {name: itertools.count(1) for name in ("raw", "bare", "recorded", "sdk")}

    def raw_httpx() -> bytes:
        body = {"prompt": PROMPT, "size": size, "seed": next(seeds["raw"]), "n": 1, "output_format": "png",
                "response_format": "b64_json"}
        response = raw.post(url + "/v1/images/generations", json=body)
        response.raise_for_status()
        return base64.b64decode(response.json()["data"][0]["b64_json"])

    def openai_sdk() -> bytes:
        result = sdk.images.generate(prompt=PROMPT, size=size, extra_body={"seed": next(seeds["sdk"])},  # type: ignore[arg-type]
                                     response_format="b64_json")
        return base64.b64decode(result.data[0].b64_json or "")  # type: ignore[index]

    ways: dict[str, Callable[[], bytes]] = {
        "raw httpx": raw_httpx,
        "vomni_nb OmniClient.image": lambda: bare.image(PROMPT, size=size, seed=next(seeds["bare"])).data,
        "vomni_nb, history on (default)": lambda: recorded.image(PROMPT, size=size, seed=next(seeds["recorded"])).data,
        "openai SDK": openai_sdk,
    }
    return ways, [raw, bare, recorded, store, sdk]


def _chat_ways(url: str) -> tuple[dict[str, Callable[[], str]], list[object]]:
    from openai import OpenAI

    from vomni_nb import OmniClient

    raw = httpx.Client(timeout=120)
    bare = OmniClient(url, history=False)
    sdk = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    body = {"messages": MESSAGES, "modalities": ["text"], "seed": 7}

    def raw_httpx() -> str:
        response = raw.post(url + "/v1/chat/completions", json=body)
        response.raise_for_status()
        return str(response.json()["choices"][0]["message"]["content"])

    def openai_sdk() -> str:
        answer = sdk.chat.completions.create(model=OMNI_MODEL, messages=MESSAGES,  # type: ignore[arg-type]
                                             seed=7, extra_body={"modalities": ["text"]})
        return answer.choices[0].message.content or ""

    ways: dict[str, Callable[[], str]] = {
        "raw httpx": raw_httpx,
        "vomni_nb OmniClient.chat": lambda: bare.chat(MESSAGES[0]["content"], seed=7).text,
        "openai SDK": openai_sdk,
    }
    return ways, [raw, bare, sdk]


def _rows(benchmark: str, ways: dict[str, Callable[[], object]], rounds: int) -> list[Row]:
    cpu: dict[str, list[float]] = {}
    samples = harness.interleaved(ways, rounds, cpu=cpu)
    rows = []
    for name, values in samples.items():
        # Paired: each call over the raw call of the same round, robust to load that drifts during the run.
        paired = statistics.median(v / r for v, r in zip(values, samples["raw httpx"]))
        rows.append(harness.summary(benchmark, name, values, "ms", scale=1000, baseline=name == "raw httpx",
                                    note="" if name == "raw httpx" else f"paired {paired:.3f}x",
                                    paired_ratio=paired))
    for name, values in cpu.items():  # this process only: the client's work, none of the simulator's
        rows.append(harness.summary(f"{benchmark.split(',')[0]}, client CPU", name, values, "ms", scale=1000,
                                    baseline=name == "raw httpx"))
    return rows


def _close(things: list[object]) -> None:
    for thing in things:
        getattr(thing, "close")()


def _in_process(rounds: int) -> list[Row]:
    """The client's own cost: an in-memory transport answers at once (a mock on purpose: no server noise)."""
    from vomni_nb import OmniClient

    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 40).save(buffer, "PNG")
    png = base64.b64encode(buffer.getvalue()).decode()
    body = json.dumps({"created": 1, "data": [{"b64_json": png, "url": None, "revised_prompt": None}],
                       "output_format": "png", "size": "64x64", "metrics": {}}).encode()
    models = json.dumps({"object": "list", "data": [{"id": IMAGE_MODEL}]}).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=models if request.url.path == "/v1/models" else body,
                              headers={"content-type": "application/json"})

    transport = httpx.MockTransport(answer)
    url = "http://in-process"
    client = OmniClient(url, transport=transport, history=False)
    raw = httpx.Client(transport=transport)
    payload = {"prompt": PROMPT, "size": "64x64", "seed": 7, "response_format": "b64_json"}
    samples = harness.interleaved({
        "raw httpx": lambda: base64.b64decode(raw.post(url + "/v1/images/generations", json=payload)
                                              .json()["data"][0]["b64_json"]),
        "vomni_nb OmniClient.image": lambda: client.image(PROMPT, size="64x64", seed=7),
    }, rounds, warmup=20)
    client.close()
    raw.close()
    benchmark = "client cost, in-process (no server)"
    return [harness.summary(benchmark, name, values, "us", scale=1e6, baseline=name == "raw httpx",
                            note="" if name == "raw httpx" else "validation, seed, PNG header, result object")
            for name, values in samples.items()]


def run(quick: bool = False) -> list[Row]:
    rounds = {"512x512": 6 if quick else 30, "1024x1024": 4 if quick else 15}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder, harness.sim(IMAGE_MODEL) as url:
        for size, count in rounds.items():
            ways, closers = _image_ways(url, size, Path(folder) / f"history-{size}.sqlite3")
            outputs = {name: fn() for name, fn in ways.items()}
            assert len(set(outputs.values())) == 1, "every way should fetch the same image"
            rows += _rows(f"image {size}, per request", ways, count)
            _close(closers)
    with harness.sim(OMNI_MODEL, "--tokens-per-second", "0") as url:
        chat_ways, closers = _chat_ways(url)
        texts = {name: fn() for name, fn in chat_ways.items()}
        assert len(set(texts.values())) == 1, "every way should get the same answer"
        rows += _rows("chat (not streamed), per request", chat_ways, 8 if quick else 40)
        _close(closers)
    rows += _in_process(100 if quick else 400)
    return rows


if __name__ == "__main__":
    harness.main(run)
