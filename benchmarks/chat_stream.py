"""A streamed chat answer of 5,000 tokens at full speed, in a real kernel: vomni_nb's display pipeline against
raw SSE consumption and the hand-rolled live outputs people write.

vomni-sim sends the 5,000 tokens as fast as it can (``--reply-tokens 5000 --tokens-per-second 0``). Each
way runs as a cell in one real IPython kernel (jupyter_client), interleaved over the rounds; measured from
outside: the cell's wall time (execute request to idle), the kernel process's CPU time (psutil), and the
display messages the front end has to render (stream, display_data, update_display_data on iopub).

- raw SSE, no display: httpx ``iter_lines`` + ``json.loads``, the text kept (the baseline);
- raw SSE + ``print(piece, end="")``: ipykernel batches stdout, so few messages but plain text;
- raw SSE + ``handle.update(Markdown(text))`` per token: a live Markdown answer done naively;
- vomni_nb: ``%%omni_chat`` where the chat magic exists, else ``show_stream(client.chat_stream(...))``,
  the path the chat magic uses: one output, updated at most every 80 ms, then the final static answer.

    .venv/bin/python benchmarks/chat_stream.py [--quick]
"""

from __future__ import annotations

import time
from typing import Any

import psutil

import _harness as harness
from _harness import OMNI_MODEL, Row

TOKENS = 5000
OUTPUT_TYPES = ("stream", "display_data", "update_display_data", "execute_result")

SETUP = """
import json, httpx
from IPython.display import Markdown, display
URL = {url!r}
BODY = {{"messages": [{{"role": "user", "content": "Tell me everything about lighthouses."}}],
        "modalities": ["text"], "stream": True, "seed": 1}}
def raw_pieces():
    with httpx.stream("POST", URL + "/v1/chat/completions", json=BODY, timeout=300) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {{"):
                for choice in json.loads(line[6:])["choices"]:
                    piece = choice["delta"].get("content")
                    if piece:
                        yield piece
"""

RAW = """
text = "".join(raw_pieces())
assert len(text.split()) >= {tokens} - 10
"""

PRINT = """
text = ""
for piece in raw_pieces():
    text += piece
    print(piece, end="")
"""

MARKDOWN = """
text = ""
handle = display(Markdown(""), display_id=True)
for piece in raw_pieces():
    text += piece
    handle.update(Markdown(text))
"""

SHOW_STREAM = """
from vomni_nb import OmniClient
from vomni_nb.display import show_stream
with OmniClient(URL, history=False) as client:
    answer = show_stream(client.chat_stream("Tell me everything about lighthouses.", modalities=["text"], seed=1))
assert len(answer.text.split()) >= {tokens} - 10
"""

MAGIC_SETUP = """
%load_ext vomni_nb
%omni_server attach {url}
"""

MAGIC = """%%omni_chat --new --no-log
Tell me everything about lighthouses.
"""


def _cell(kernel: Any, pid: int, code: str) -> tuple[float, float, int]:
    """Run one cell: (wall seconds to its reply, kernel CPU seconds, output messages that reached us).

    The reply is awaited on the shell channel, which never drops: a flood of display updates can overflow
    iopub's queue (zmq's high-water mark), and the kernel's "idle" could be among the messages lost."""
    import queue

    process = psutil.Process(pid)
    cpu = process.cpu_times()
    started = time.perf_counter()
    request = kernel.kc.execute(code, allow_stdin=False)
    while True:
        reply = kernel.kc.get_shell_msg(timeout=600)
        if reply["parent_header"].get("msg_id") == request:
            break
    wall = time.perf_counter() - started
    after = process.cpu_times()
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {reply['content'].get('ename')}: {reply['content'].get('evalue')}")
    outputs = 0
    while True:  # what iopub delivered, up to the idle status (or a quiet second, if that was dropped)
        try:
            message = kernel.kc.get_iopub_msg(timeout=1.0)
        except queue.Empty:
            break
        if message["parent_header"].get("msg_id") != request:
            continue
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
        outputs += message["msg_type"] in OUTPUT_TYPES
    return wall, (after.user + after.system) - (cpu.user + cpu.system), outputs


def run(quick: bool = False) -> list[Row]:
    from tests.support.kernels import KernelSession

    rounds = 1 if quick else 5
    rows: list[Row] = []
    with harness.sim(OMNI_MODEL, "--reply-tokens", str(TOKENS), "--tokens-per-second", "0") as url:
        kernel = KernelSession()
        try:
            pid = kernel.km.provisioner.pid  # type: ignore[union-attr]
            reply, _ = kernel.run(SETUP.format(url=url))
            assert reply["status"] == "ok", reply
            magic = (harness.REPO / "vomni_nb" / "magics" / "chat.py").exists()
            ours = "vomni_nb %%omni_chat" if magic else "vomni_nb show_stream"
            if magic:
                reply, _ = kernel.run(MAGIC_SETUP.format(url=url))
                assert reply["status"] == "ok", reply
            ways = {
                "raw SSE, no display": RAW.format(tokens=TOKENS),
                "raw SSE + print per token": PRINT,
                "raw SSE + Markdown update per token": MARKDOWN,
                ours: MAGIC if magic else SHOW_STREAM.format(tokens=TOKENS),
            }
            results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in ways}
            for name, code in ways.items():  # warm-up: imports, connections
                _cell(kernel, pid, code)
            names = list(ways)
            for index in range(rounds):
                for name in names[index % len(names):] + names[: index % len(names)]:
                    results[name].append(_cell(kernel, pid, ways[name]))
        finally:
            kernel.close()
    baseline = "raw SSE, no display"
    for name, samples in results.items():
        updates = sorted(s[2] for s in samples)[len(samples) // 2]
        note = f"{updates:,} display messages reached the front end"
        if name.startswith("raw SSE + Markdown") and updates <= TOKENS:
            note += f" ({TOKENS + 1:,} sent: iopub's queue dropped the rest)"
        rows.append(harness.summary(f"streamed chat {TOKENS:,} tokens: wall", name, [s[0] for s in samples], "s",
                                    baseline=name == baseline, note=note, display_messages=updates))
    for name, samples in results.items():
        rows.append(harness.summary(f"streamed chat {TOKENS:,} tokens: kernel CPU", name, [s[1] for s in samples],
                                    "s", baseline=name == baseline))
    return rows


if __name__ == "__main__":
    harness.main(run)
