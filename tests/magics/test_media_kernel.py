"""The media magics in a real kernel (jupyter_client) against real simulators: streamed chat text is
throttled and ends whole, and Ctrl-C (a kernel interrupt) ends %%omni_chat, %%omni_speak --stream and
%%omni_video on the server (the simulator logs the abort; the video job is deleted), after which the
next cell runs."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.kernels import KernelSession
from tests.support.sims import OMNI_MODEL, TTS_MODEL, VIDEO_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


@contextlib.contextmanager
def _magics_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KernelSession]:
    """A kernel with the magics loaded, a private server registry and history."""
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))
    with closing(KernelSession()) as session:
        reply, _ = session.run("%load_ext vomni_nb")
        assert reply["status"] == "ok", reply
        yield session


def _of(messages: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] in types]


def _attach(kernel: KernelSession, url: str) -> None:
    reply, _ = kernel.run(f"%omni_server attach {url}")
    assert reply["status"] == "ok", reply


def _printed(kernel: KernelSession, code: str) -> str:
    reply, messages = kernel.run(code)
    assert reply["status"] == "ok", reply
    return "".join(m["content"]["text"] for m in _of(messages, "stream"))


def _when(message: dict[str, Any]) -> float:
    stamp = message["header"]["date"]
    return (stamp if isinstance(stamp, dt.datetime) else dt.datetime.fromisoformat(stamp)).timestamp()


def test_a_chat_streamed_at_200_tokens_a_second_updates_at_most_20_times_a_second(tmp_path: Path,
                                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                                  start_sim: Any) -> None:
    with _magics_kernel(tmp_path, monkeypatch) as kernel:
        sim = start_sim(OMNI_MODEL, "--tokens-per-second", "200")
        _attach(kernel, sim.url)
        question = "Tell me about lighthouses, " + "and the keepers who kept them, " * 4
        reply, messages = kernel.run(f"%%omni_chat --new --out answer\n{question}", allow_stdin=False)
        assert reply["status"] == "ok", reply
        updates = _of(messages, "update_display_data")
        streaming = [m for m in updates if m["content"]["data"]["text/plain"].endswith("▌")]
        assert len(streaming) >= 2, "the text was shown while it arrived"
        span = _when(streaming[-1]) - _when(streaming[0])
        assert len(streaming) - 1 <= 20 * span, f"{len(streaming)} updates in {span:.2f} s"
        final = updates[-1]["content"]
        text = _printed(kernel, "print(answer.text)").strip()
        assert final["data"]["text/markdown"] == text and final["data"]["text/plain"] == text
        assert "▌" not in text and final["metadata"]["vomni_nb"]["kind"] == "chat"
        tokens = len(text.split())
        assert tokens > 3 * len(streaming), "far fewer updates than tokens: the throttle, not the stream, set the pace"


def test_interrupting_a_streamed_chat_aborts_it_and_keeps_the_conversation(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           start_sim: Any) -> None:
    with _magics_kernel(tmp_path, monkeypatch) as kernel:
        sim = start_sim(OMNI_MODEL, "--tokens-per-second", "4")
        _attach(kernel, sim.url)
        msg_id = kernel.send("%%omni_chat --new\nA slow answer, please.", allow_stdin=False)
        seen = []
        while not any(m["msg_type"] == "update_display_data" and "▌" in m["content"]["data"]["text/plain"]
                      for m in seen):  # words are arriving
            seen.append(kernel.next_message(msg_id))
        kernel.km.interrupt_kernel()
        reply, messages = kernel.collect(msg_id, seen=seen)
        assert reply["status"] == "error" and reply["ename"] == "Interrupted"
        last = _of(messages, "update_display_data")[-1]["content"]["data"]["text/plain"]
        assert last.startswith("[vomni-sim]") and last.endswith("✗ (interrupted)")  # what arrived stays, marked
        sim.wait_for_log("aborted.")
        turns = _printed(kernel, "import vomni_nb.conversation as c; print(len(c.default_conversation()))")
        assert turns.strip() == "0"


def test_interrupting_streamed_speech_aborts_it_and_the_next_cell_runs(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       start_sim: Any) -> None:
    with _magics_kernel(tmp_path, monkeypatch) as kernel:
        sim = start_sim(TTS_MODEL)
        _attach(kernel, sim.url)
        text = "The kernel streams this sentence to the player, one piece at a time. " * 12
        msg_id = kernel.send(f"%%omni_speak --stream\n{text}", allow_stdin=True)
        seen = []
        while not any(m["msg_type"] == "comm_msg" for m in seen):  # audio is flowing into the live player
            seen.append(kernel.next_message(msg_id))
        kernel.km.interrupt_kernel()
        reply, messages = kernel.collect(msg_id, seen=seen)
        assert reply["status"] == "error" and reply["ename"] == "Interrupted"
        final = _of(messages, "update_display_data")[-1]["content"]
        assert final["data"]["text/plain"].startswith("✗ speech: stopped after")
        assert '<audio controls src="data:audio/wav;base64,' in final["data"]["text/html"]  # what arrived
        sim.wait_for_log("aborted.")
        assert _printed(kernel, "print('next cell')").strip() == "next cell"


def test_interrupting_a_video_deletes_the_job_and_the_next_cell_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     start_sim: Any) -> None:
    with _magics_kernel(tmp_path, monkeypatch) as kernel:
        sim = start_sim(VIDEO_MODEL, "--latency", "60")
        _attach(kernel, sim.url)
        msg_id = kernel.send("%%omni_video --size 64x64 --seconds 1 --fps 4\nwaves that never come", allow_stdin=False)
        seen = []
        while not any(m["msg_type"] == "update_display_data" and "queued" in m["content"]["data"]["text/plain"]
                      for m in seen):  # the status line follows the job
            seen.append(kernel.next_message(msg_id))
        status = next(m for m in seen if m["msg_type"] == "update_display_data")["content"]["data"]["text/plain"]
        assert status.startswith("◔ a video 64x64, 1 s on ") and "queued, job video_gen_" in status
        kernel.km.interrupt_kernel()
        reply, messages = kernel.collect(msg_id, seen=seen)
        assert reply["status"] == "error" and reply["ename"] == "Interrupted"
        assert _of(messages, "update_display_data")[-1]["content"]["data"]["text/plain"].startswith("✗ interrupted")
        job_id = status.split("job ")[1].split(")")[0]
        log = sim.wait_for_log(f"DELETE /v1/videos/{job_id} HTTP/1.1\" 200")
        assert "persisted" not in log
        assert httpx.get(f"{sim.url}/v1/videos", timeout=5).json()["data"] == []  # the job is gone
        assert _printed(kernel, "print('next cell')").strip() == "next cell"


def test_the_python_twins_stream_into_the_cell_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, omni_server: Any,
                                                   tts_server: Any) -> None:
    with _magics_kernel(tmp_path, monkeypatch) as kernel:
        code = ("import vomni_nb\n"
                f"answer = vomni_nb.chat('Hello?', new=True, stream=True, server={omni_server.url!r})\n"
                f"speech = vomni_nb.speak('Hello.', stream=True, server={tts_server.url!r})")
        reply, messages = kernel.run(code, allow_stdin=False)
        assert reply["status"] == "ok", reply
        by_output: dict[str, list[dict[str, Any]]] = {}
        for message in _of(messages, "display_data", "update_display_data"):
            by_output.setdefault(message["content"]["transient"]["display_id"], []).append(message["content"])
        finals = [shown[-1] for shown in by_output.values() if any(shown[-1]["data"].values())]
        assert [final["metadata"]["vomni_nb"]["kind"] for final in finals] == ["chat", "speech"]
        assert finals[0]["data"]["text/markdown"].startswith("[vomni-sim]")
        assert '<audio controls src="data:audio/wav;base64,' in finals[1]["data"]["text/html"]
