"""Helpers for kernel tests that play a widget's front end over jupyter_client: send comm messages (on the
main shell or on a kernel subshell, as JupyterLab does with ipykernel 7), and read every iopub message until
one of interest arrives. Plain functions, not fixtures (those live in ``tests/conftest.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.support.kernels import KernelSession

__all__ = ["Message", "send_custom", "new_subshell", "drain_until", "state_of", "opened_widget"]

Message = dict[str, Any]


def send_custom(kernel: KernelSession, comm_id: str, content: dict[str, Any], *, subshell: str | None = None,
                method: str = "custom") -> None:
    """A comm message as the widget's front end sends it: ``model.send(content)`` (method "custom") or a
    state change (method "update", ``content`` being the changed traits)."""
    data = ({"method": method, "content": content} if method == "custom"
            else {"method": method, "state": content, "buffer_paths": []})
    msg = kernel.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    if subshell is not None:
        msg["header"]["subshell_id"] = subshell
    kernel.kc.shell_channel.send(msg)


def new_subshell(kernel: KernelSession) -> str:
    """A new kernel subshell (its own thread and event loop); its id."""
    kernel.kc.control_channel.send(kernel.kc.session.msg("create_subshell_request", {}))
    reply = kernel.kc.get_control_msg(timeout=10)
    return str(reply["content"]["subshell_id"])


def drain_until(kernel: KernelSession, done: Callable[[Message], bool], timeout: float = 30) -> list[Message]:
    """Every iopub message (of any request) until one satisfies ``done``, that one included."""
    seen: list[Message] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg: Message = kernel.kc.get_iopub_msg(timeout=0.2)
        except Exception:  # queue.Empty: nothing yet
            continue
        seen.append(msg)
        if done(msg):
            return seen
    raise AssertionError(f"no such message within {timeout}s; saw {[m['msg_type'] for m in seen][-20:]}")


def state_of(msg: Message) -> dict[str, Any]:
    """The traits a comm "update" message carries ({} for any other message)."""
    if msg["msg_type"] != "comm_msg" or msg["content"]["data"].get("method") != "update":
        return {}
    return dict(msg["content"]["data"]["state"])


def opened_widget(messages: list[Message], class_name: str) -> Message:
    """The one comm_open of an anywidget class among ``messages``."""
    (opened,) = [m for m in messages if m["msg_type"] == "comm_open"
                 and m["content"]["data"]["state"].get("_anywidget_id", "").endswith(class_name)]
    return opened
