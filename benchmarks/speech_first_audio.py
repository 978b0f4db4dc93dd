"""Time to the first audible chunk with streamed speech vs time to the whole file, for a ~30 s utterance.

Starts one vomni-sim TTS server on a free port, then, interleaved (so drift hits all alike), for N rounds:

- file:   ``client.speak(text, response_format="wav")``: nothing can play before the whole file is in.
- stream: ``client.speak_stream(text, response_format="pcm")``: the live player can schedule the first
          chunk as soon as it arrives (plus its 50 ms scheduling margin in the browser); also the time
          to the stream's last chunk, which is what a real server needs for the whole file, since it
          generates the same audio either way.

Prints medians. Note: vomni-sim synthesises the whole utterance before it answers, then sends a stream at
8x real time but a non-streamed file at once, so on the simulator "file" is not slowed by generation the
way it is on a GPU; "stream, last chunk" is the fair stand-in for a real server's whole file.

    .venv/bin/python benchmarks/speech_first_audio.py [--rounds 5] [--words 75]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from vomni_nb import OmniClient

MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
SENTENCES = [
    "The lighthouse keeper climbed the stairs again at dusk.",
    "Below him the harbour filled with small boats coming home.",
    "He wiped the great lens, trimmed the wick, and waited for the dark.",
    "Far out at sea a captain watched for the first flash of light.",
]


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


def utterance(words: int) -> str:
    text: list[str] = []
    while sum(len(s.split()) for s in text) < words:
        text.append(SENTENCES[len(text) % len(SENTENCES)])
    return " ".join(text)


def whole_file(client: OmniClient, text: str) -> tuple[float, float]:
    started = time.perf_counter()
    result = client.speak(text, response_format="wav")
    return time.perf_counter() - started, result.duration_s or 0.0


def streamed(client: OmniClient, text: str) -> tuple[float, float, float]:
    started = time.perf_counter()
    first = None
    stream = client.speak_stream(text, response_format="pcm")
    for event in stream:
        if first is None and getattr(event, "pcm", None):
            first = time.perf_counter() - started
    result = stream.finish()
    assert first is not None, "the stream carried no audio"
    return first, time.perf_counter() - started, result.duration_s or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--words", type=int, default=92, help="length of the utterance (92 words is about 30 s)")
    args = parser.parse_args()
    text = utterance(args.words)
    port = free_port()
    log = os.path.join(tempfile.mkdtemp(prefix="vomni-bench-"), "sim.log")
    process = start_sim(port, log)
    try:
        with OmniClient(f"http://127.0.0.1:{port}") as client:
            whole_file(client, text)  # warm up (espeak, connection)
            files, firsts, lasts, durations = [], [], [], []
            for _ in range(args.rounds):
                file_s, duration = whole_file(client, text)
                first_s, last_s, stream_duration = streamed(client, text)
                files.append(file_s)
                firsts.append(first_s)
                lasts.append(last_s)
                durations += [duration, stream_duration]
    finally:
        process.terminate()
        process.wait(10)
    median = statistics.median
    print(f"utterance: {args.words} words, {median(durations):.1f} s of speech, {args.rounds} rounds (medians)")
    print(f"  stream, first audible chunk: {median(firsts) * 1000:8.0f} ms")
    print(f"  stream, last chunk:          {median(lasts) * 1000:8.0f} ms   (what a real server needs for the whole file)")
    print(f"  file, whole WAV:             {median(files) * 1000:8.0f} ms   (vomni-sim: no generation time, see docstring)")
    print(f"  speech starts {median(lasts) / median(firsts):.0f}x sooner with the live player than after the last chunk")


if __name__ == "__main__":
    main()
