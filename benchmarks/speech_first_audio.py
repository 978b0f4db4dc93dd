"""Time to the first audible chunk with streamed speech against time to the whole file, for a ~15 s utterance.

One vomni-sim TTS server paced as a GPU would be (``--speech-realtime-factor 4``: streamed windows and the
whole file both come at 4x real time), then, interleaved over the rounds:

- file: ``client.speak(text, response_format="wav")``: nothing can play before the whole file is in (baseline);
- stream: ``client.speak_stream(text, response_format="pcm")``: the live player schedules the first chunk
  as soon as it arrives (plus its 50 ms margin in the browser); also the time to the stream's last chunk.

    .venv/bin/python benchmarks/speech_first_audio.py [--quick]
"""

from __future__ import annotations

import time

import _harness as harness
from _harness import TTS_MODEL, Row

FACTOR = 4.0
SENTENCES = [
    "The lighthouse keeper climbed the stairs again at dusk.",
    "Below him the harbour filled with small boats coming home.",
    "He wiped the great lens, trimmed the wick, and waited for the dark.",
    "Far out at sea a captain watched for the first flash of light.",
]


def utterance(words: int) -> str:
    text: list[str] = []
    while sum(len(s.split()) for s in text) < words:
        text.append(SENTENCES[len(text) % len(SENTENCES)])
    return " ".join(text)


def run(quick: bool = False) -> list[Row]:
    from vomni_nb import OmniClient

    text = utterance(46)
    files, firsts, lasts, durations = [], [], [], []
    with harness.sim(TTS_MODEL, "--speech-realtime-factor", str(FACTOR)) as url:
        with OmniClient(url, history=False) as client:
            client.speak("warm up", response_format="wav")
            for _ in range(1 if quick else 3):
                started = time.perf_counter()
                durations.append(client.speak(text, response_format="wav").duration_s or 0.0)
                files.append(time.perf_counter() - started)
                started = time.perf_counter()
                first = None
                stream = client.speak_stream(text, response_format="pcm")
                for event in stream:
                    if first is None and getattr(event, "pcm", None):
                        first = time.perf_counter() - started
                stream.finish()
                assert first is not None, "the stream carried no audio"
                firsts.append(first)
                lasts.append(time.perf_counter() - started)
    benchmark = f"speech, {sorted(durations)[len(durations) // 2]:.0f} s utterance at {FACTOR:g}x real time"
    return [
        harness.summary(benchmark, "whole WAV file (speak)", files, "s", baseline=True),
        harness.summary(benchmark, "stream: first audible chunk", firsts, "s", note="the live player starts here"),
        harness.summary(benchmark, "stream: last chunk", lasts, "s"),
    ]


if __name__ == "__main__":
    harness.main(run)
