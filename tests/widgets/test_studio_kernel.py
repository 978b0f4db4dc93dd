"""The Studio's messages in a real kernel (jupyter_client), as a front end sends and receives them, against a
real vomni-sim image server the kernel starts through its manager (``--latency 2``, so a Cancel lands while
the server generates).

Widget messages arrive on the main shell or, as JupyterLab sends them to an ipykernel 7, on a subshell
with its own thread and event loop; both are exercised. Images reach the page as binary buffers of the
``results`` state; Cancel closes the request (the server logs the abort); Pin shows the result's bundle
under the cell that displayed the Studio; bad input is refused before anything is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.support.comms import Message, drain_until, new_subshell, opened_widget, send_custom, state_of
from tests.support.kernels import KernelSession
from tests.support.sims import IMAGE_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(180)]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
def status_is(state: str) -> Callable[[Message], bool]:
    return lambda msg: state_of(msg).get("status", {}).get("state") == state


def _setup(tmp: Path) -> str:
    return (
        "from vomni_nb import HistoryStore, Studio\n"
        "from vomni_nb.server import ServerManager\n"
        f"m = ServerManager(registry_dir={str(tmp / 'registry')!r}, log_dir={str(tmp / 'logs')!r})\n"
        f"server = m.start({IMAGE_MODEL!r}, sim=True, extra_args=['--latency', '2'])\n"
        f"store = HistoryStore({str(tmp / 'history.sqlite3')!r})"
    )


def test_studio_over_the_comm_generates_cancels_pins_and_refuses_bad_input(tmp_path: Path) -> None:
    with closing(KernelSession()) as kernel:
        reply, _ = kernel.run(_setup(tmp_path), timeout=90)
        assert reply["status"] == "ok", reply
        studio_request = kernel.send("studio = Studio('a lighthouse', manager=m, store=store, steps=8)\nstudio",
                                     allow_stdin=True)
        reply, messages = kernel.collect(studio_request)
        assert reply["status"] == "ok", reply
        opened = opened_widget(messages, "StudioWidget")
        comm_id, state = opened["content"]["comm_id"], opened["content"]["data"]["state"]
        assert state["prompt"] == "a lighthouse" and state["steps"] == 8 and state["seed_locked"] is False
        assert [s["model"] for s in state["servers"]] == [IMAGE_MODEL] and state["server"] == state["servers"][0]["key"]
        (shown,) = [m for m in messages if m["msg_type"] == "display_data"]
        assert shown["content"]["data"][WIDGET_MIME]["model_id"] == comm_id
        assert shown["content"]["data"]["text/plain"].startswith("Studio (no widget front end here)")

        # Generate on the main shell: the image arrives as a JPEG in a binary buffer of the results state.
        send_custom(kernel, comm_id, {"type": "generate"})
        seen = drain_until(kernel, status_is("done"))
        (update,) = [m for m in seen if "results" in state_of(m)]
        paths = update["content"]["data"]["buffer_paths"]
        assert sorted(paths) == [["results", 0, "preview"], ["strip", 0, "thumb"]]
        assert all(bytes(buffer[:2]) == b"\xff\xd8" for buffer in update["buffers"])  # JPEGs, not base64 text
        (item,) = state_of(update)["results"]
        assert item["entry_id"] == 1 and item["size"] == "1024x1024" and item["elapsed_s"] > 0

        # Generate on a subshell (as JupyterLab sends it), Cancel from the main shell while the server works.
        subshell = new_subshell(kernel)
        send_custom(kernel, comm_id, {"type": "generate"}, subshell=subshell)
        drain_until(kernel, status_is("running"))
        time.sleep(0.5)
        send_custom(kernel, comm_id, {"type": "cancel"})
        seen = drain_until(kernel, status_is("cancelled"), timeout=10)
        assert "(0 of 1 made)" in state_of(seen[-1])["status"]["text"]
        # The server's own log: on a busy machine a first launch can lose its port to another program,
        # and the log of that attempt stays beside the one of the server that answered.
        reply, messages = kernel.run("print(server.log_path)")
        log = Path("".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream").strip())
        deadline = time.monotonic() + 10
        while "aborted." not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "aborted." in log.read_text()

        # Pin, from the subshell: the result's own bundle, under the cell that displayed the Studio.
        send_custom(kernel, comm_id, {"type": "pin", "key": item["key"]}, subshell=subshell)
        (pinned,) = [m for m in drain_until(kernel, lambda m: m["msg_type"] == "display_data")
                     if m["msg_type"] == "display_data"]
        assert pinned["parent_header"]["msg_id"] == studio_request
        assert "<img" in pinned["content"]["data"]["text/html"]  # a 1024x1024 image is pinned as a light preview
        assert pinned["content"]["metadata"]["vomni_nb"]["history_id"] == 1

        # An empty prompt is refused in the page's status line; nothing is sent.
        posts = log.read_text().count("POST /v1/images/generations")
        send_custom(kernel, comm_id, {"prompt": "  "}, method="update")
        send_custom(kernel, comm_id, {"type": "generate"})
        seen = drain_until(kernel, status_is("error"))
        assert state_of(seen[-1])["status"]["text"].startswith("Write a prompt first")
        assert log.read_text().count("POST /v1/images/generations") == posts

        # Closing replaces the widget by the static summary and leaves no comm open.
        reply, messages = kernel.run("studio.close()\nimport comm; print(len(comm.get_comm_manager().comms))")
        (final,) = [m for m in messages if m["msg_type"] == "update_display_data"]
        assert final["content"]["data"]["text/plain"].startswith("Studio (closed)")
        assert WIDGET_MIME not in final["content"]["data"]
        assert "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream").strip() == "0"
        kernel.run("m.shutdown()")
