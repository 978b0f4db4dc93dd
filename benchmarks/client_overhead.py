"""Per-request overhead of OmniClient.image() against raw httpx and the openai SDK, same vomni-sim.

Starts one vomni-sim (an image model) on a free port, warms up, then runs the three ways
interleaved (so drift hits all alike) and prints per-request medians and ratios. The target is
OmniClient within 5% of raw httpx (post + JSON + base64 decode).

    .venv/bin/python benchmarks/client_overhead.py [--requests 60] [--size 64x64]
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import httpx

from vomni_nb import OmniClient

MODEL = "Tongyi-MAI/Z-Image-Turbo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sim(port: int, log: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "vomni_nb.sim", MODEL, "--host", "127.0.0.1", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"vomni-sim did not start; see {log}")


def in_process_overhead(raw_httpx_body: bytes, url: str, size: str, rounds: int = 400) -> None:
    """The client's own cost per request, without server or network noise (an in-process transport)."""
    import json

    body = json.dumps({"created": 1, "data": [{"b64_json": base64.b64encode(raw_httpx_body).decode(), "url": None,
                                               "revised_prompt": None}], "output_format": "png", "size": size,
                       "cot_output": None, "metrics": {}}).encode()
    models = json.dumps({"object": "list", "data": [{"id": MODEL}]}).encode()

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=models if request.url.path == "/v1/models" else body,
                              headers={"content-type": "application/json"})

    transport = httpx.MockTransport(answer)
    client = OmniClient(url, transport=transport)
    raw = httpx.Client(transport=transport)
    payload = {"prompt": "a lighthouse at dusk", "size": size, "seed": 7, "response_format": "b64_json"}

    def ours() -> None:
        client.image("a lighthouse at dusk", size=size, seed=7)

    def raw_httpx() -> None:
        base64.b64decode(raw.post(url + "/v1/images/generations", json=payload).json()["data"][0]["b64_json"])

    ways = {"OmniClient.image": ours, "raw httpx": raw_httpx}
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for fn in ways.values():
        fn()
    for _ in range(rounds):
        for name, fn in ways.items():
            started = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    extra = (medians["OmniClient.image"] - medians["raw httpx"]) * 1e6
    print(f"in-process transport (client cost only, {rounds} rounds): OmniClient {medians['OmniClient.image'] * 1e6:.0f} us, "
          f"raw httpx {medians['raw httpx'] * 1e6:.0f} us, extra {extra:.0f} us per request "
          "(validation, seed, PNG header read, result object)")
    client.close()
    raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--size", default="64x64")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = os.path.join(tempfile.mkdtemp(prefix="vomni-bench-"), "sim.log")
    process = start_sim(port, log)
    try:
        from openai import OpenAI

        client = OmniClient(url)
        raw = httpx.Client(timeout=60)
        sdk = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        body = {"prompt": "a lighthouse at dusk", "size": args.size, "seed": 7, "n": 1, "output_format": "png",
                "response_format": "b64_json"}

        def ours() -> bytes:
            return client.image("a lighthouse at dusk", size=args.size, seed=7).data

        def raw_httpx() -> bytes:
            response = raw.post(url + "/v1/images/generations", json=body)
            response.raise_for_status()
            return base64.b64decode(response.json()["data"][0]["b64_json"])

        def openai_sdk() -> bytes:
            result = sdk.images.generate(prompt="a lighthouse at dusk", size=args.size,  # type: ignore[arg-type]
                                         extra_body={"seed": 7}, response_format="b64_json")
            return base64.b64decode(result.data[0].b64_json or "")  # type: ignore[index]

        ways: dict[str, Callable[[], bytes]] = {"OmniClient.image": ours, "raw httpx": raw_httpx, "openai SDK": openai_sdk}
        outputs = {name: fn() for name, fn in ways.items()}  # warm-up, and the same image every way
        assert len(set(outputs.values())) == 1, "the three ways should fetch the same image"
        for _ in range(5):
            for fn in ways.values():
                fn()
        samples: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(args.requests):
            order = list(ways.items())
            order = order[i % 3:] + order[: i % 3]  # rotate who goes first
            for name, fn in order:
                started = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - started)
        base = statistics.median(samples["raw httpx"])
        print(f"vomni-sim {MODEL}, {args.size} PNG, {args.requests} requests each, interleaved")
        print(f"{'way':<18}{'median ms':>10}{'p90 ms':>9}{'vs raw httpx':>14}{'paired ratio':>14}")
        for name, values in samples.items():
            median = statistics.median(values)
            p90 = statistics.quantiles(values, n=10)[-1]
            # Paired: each request against the raw request of the same round (robust to load drift).
            paired = statistics.median(v / r for v, r in zip(values, samples["raw httpx"]))
            print(f"{name:<18}{median * 1000:>10.2f}{p90 * 1000:>9.2f}{median / base:>13.3f}x{paired:>13.3f}x")
        client.close()
        raw.close()
        sdk.close()
        in_process_overhead(raw_httpx_body=outputs["raw httpx"], url=url, size=args.size)
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
