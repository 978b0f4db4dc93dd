"""The player's messages from a real kernel (jupyter_client) streaming from a real vomni-sim TTS server.

A person's front end gets the widget: PCM16 as binary buffers of custom comm messages (never base64,
never a trait), then "end", then the same output replaced by the static player, then the comm closed.
A headless request gets no widget at all, only a status line that ends as the static player. Ctrl-C
stops the sound, leaves a player of what arrived, and the server aborts the generation.
"""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

import pytest

from tests.support.kernels import KernelSession
from tests.support.sims import TTS_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
TEXT = "The kernel streams this sentence to the player, one piece at a time, and then leaves a static player."


def _cell(url: str, text: str = TEXT) -> str:
    return (
        "from vomni_nb import OmniClient\n"
        "from vomni_nb.widgets import play_stream\n"
        f"result = play_stream(OmniClient({url!r}).speak_stream({text!r}, response_format='pcm'), title='kernel test')\n"
        "print('frames', result.frames)"
    )


def _of(messages: list[dict[str, Any]], *types: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["msg_type"] in types]


def _custom(messages: list[dict[str, Any]], comm_id: str) -> list[dict[str, Any]]:
    return [m for m in _of(messages, "comm_msg")
            if m["content"]["comm_id"] == comm_id and m["content"]["data"].get("method") == "custom"]


def test_a_watched_kernel_sends_pcm_to_the_widget_as_binary_buffers(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL)
    with closing(KernelSession()) as kernel:
        reply, messages = kernel.run(_cell(sim.url), allow_stdin=True)
        assert reply["status"] == "ok", reply
        frames = int("".join(m["content"]["text"] for m in _of(messages, "stream")).split()[1])
        opened = [m for m in _of(messages, "comm_open")
                  if m["content"]["data"]["state"].get("_anywidget_id", "").endswith("SpeechPlayerWidget")]
        assert len(opened) == 1
        comm_id = opened[0]["content"]["comm_id"]
        state = opened[0]["content"]["data"]["state"]
        assert "export default" in state["_esm"] and state["title"] == "kernel test"
        # One output: the widget view with a text fallback, later replaced in place by the static player.
        shown = _of(messages, "display_data")
        assert len(shown) == 1
        assert shown[0]["content"]["data"][WIDGET_MIME]["model_id"] == comm_id
        assert shown[0]["content"]["data"]["text/plain"].startswith("♪ kernel test")
        custom = _custom(messages, comm_id)
        chunks = [m for m in custom if m["content"]["data"]["content"]["type"] == "chunk"]
        assert len(chunks) >= 3
        assert all(len(m["buffers"]) == 1 for m in chunks)
        assert sum(len(m["buffers"][0]) for m in chunks) == 2 * frames  # every sample, once
        assert all(len(json.dumps(m["content"])) < 300 for m in custom)  # the audio is in the buffers only
        assert [m["content"]["data"]["content"]["type"] for m in custom][-1] == "end"
        final = _of(messages, "update_display_data")
        assert len(final) == 1
        assert final[0]["content"]["transient"] == shown[0]["content"]["transient"]
        data, metadata = final[0]["content"]["data"], final[0]["content"]["metadata"]
        assert WIDGET_MIME not in data and data["text/plain"].startswith("SpeechResult(")
        assert '<audio controls src="data:audio/' in data["text/html"]
        assert "vomni_nb" in metadata
        # The end comes before the replacement (the view hands over its position), the close after it.
        order = [m["header"]["msg_id"] for m in messages]
        closed = [m for m in _of(messages, "comm_close") if m["content"]["comm_id"] == comm_id]
        assert len(closed) == 1
        assert order.index(custom[-1]["header"]["msg_id"]) < order.index(final[0]["header"]["msg_id"])
        assert order.index(final[0]["header"]["msg_id"]) < order.index(closed[0]["header"]["msg_id"])
        # Nothing stays open in the kernel (the widget's layout model included).
        reply, messages = kernel.run("import comm; print(len(comm.get_comm_manager().comms))")
        assert "".join(m["content"]["text"] for m in _of(messages, "stream")).strip() == "0"


def test_a_headless_request_gets_a_status_line_and_no_widget(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL)
    with closing(KernelSession()) as kernel:
        reply, messages = kernel.run(_cell(sim.url, TEXT * 3), allow_stdin=False)
        assert reply["status"] == "ok", reply
    assert not _of(messages, "comm_open", "comm_msg")
    shown = _of(messages, "display_data")
    updates = _of(messages, "update_display_data")
    assert len(shown) == 1 and shown[0]["content"]["data"]["text/plain"].startswith("♪ kernel test: receiving speech")
    assert len(updates) >= 2  # the status line moved on while the audio arrived, then the result replaced it
    assert any("s of audio" in m["content"]["data"]["text/plain"] for m in updates[:-1])
    assert all(m["content"]["transient"] == shown[0]["content"]["transient"] for m in updates)
    final = updates[-1]["content"]["data"]
    assert '<audio controls src="data:audio/' in final["text/html"] and WIDGET_MIME not in final


def test_ctrl_c_stops_the_player_and_leaves_what_arrived(start_sim: Any) -> None:
    sim = start_sim(TTS_MODEL)
    with closing(KernelSession()) as kernel:
        msg_id = kernel.send(_cell(sim.url, TEXT * 12), allow_stdin=True)
        seen = []
        while not any(m["msg_type"] == "comm_msg" for m in seen):  # audio is flowing
            seen.append(kernel.next_message(msg_id))
        kernel.km.interrupt_kernel()
        reply, messages = kernel.collect(msg_id, seen=seen)
    assert reply["status"] == "error" and reply["ename"] == "Interrupted"  # vomni_nb.errors.Interrupted, a KeyboardInterrupt
    comm_id = _of(messages, "comm_open")[-1]["content"]["comm_id"]
    kinds = [m["content"]["data"]["content"]["type"] for m in _custom(messages, comm_id)]
    assert kinds[-1] == "abort" and "end" not in kinds
    final = _of(messages, "update_display_data")[-1]["content"]
    assert final["data"]["text/plain"].startswith("✗ kernel test: stopped after")
    assert "(Interrupted)" in final["data"]["text/plain"]
    assert '<audio controls src="data:audio/' in final["data"]["text/html"]
    assert final["metadata"]["vomni_nb"]["partial"] is True
    sim.wait_for_log("aborted.")  # closing the connection made the server abort the generation
