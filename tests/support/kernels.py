"""A real IPython kernel driven through jupyter_client, recording every message a cell sends.

``run(code, allow_stdin=...)`` matters for the widgets: a person's front end (JupyterLab, Notebook 7)
sends execute requests with ``allow_stdin`` true, a headless executor (nbclient) with false.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

__all__ = ["KernelSession", "REPO"]

REPO = Path(__file__).resolve().parents[2]


class KernelSession:
    def __init__(self, *, ready: bool = True) -> None:
        """Start a kernel and wait until it answers; ``ready=False`` returns at once (call ``wait_ready``), so
        several kernels start side by side."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(REPO))
        self.kc = self.km.client()
        self.kc.start_channels()
        if ready:
            self.wait_ready()

    def wait_ready(self) -> None:
        self.kc.wait_for_ready(timeout=120)

    def send(self, code: str, *, allow_stdin: bool) -> str:
        """Start executing ``code``; returns the request's id (for ``collect``)."""
        return str(self.kc.execute(code, allow_stdin=allow_stdin))

    def next_message(self, msg_id: str, timeout: float = 60) -> dict[str, Any]:
        """The next iopub message of that request."""
        deadline = time.monotonic() + timeout
        while True:
            msg: dict[str, Any] = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def collect(self, msg_id: str, timeout: float = 60, seen: list[dict[str, Any]] | None = None,
                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Every iopub message of the request until the kernel is idle again, and the execute reply."""
        messages = list(seen or [])
        deadline = time.monotonic() + timeout
        while True:
            msg = self.next_message(msg_id, max(0.1, deadline - time.monotonic()))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            messages.append(msg)
        while True:
            reply: dict[str, Any] = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"], messages

    def run(self, code: str, *, allow_stdin: bool = True, timeout: float = 60,
            ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return self.collect(self.send(code, allow_stdin=allow_stdin), timeout)

    def close(self) -> None:
        self.kc.stop_channels()
        if self.km.is_alive():
            # Asked to shut down, not killed: the kernel exits as a person's would, and `make coverage`
            # keeps what our code did in it (a killed process writes no data; one stuck past
            # shutdown_wait_time gets SIGTERM, which coverage also survives).
            self.km.shutdown_kernel(now=False)
        else:
            self.km.cleanup_resources()
        self.km.context.destroy(linger=0)  # ours alone (the manager made it); avoids an unclosed-context warning
