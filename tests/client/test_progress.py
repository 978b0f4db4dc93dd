"""A video job's progress: the status text, the live line, and the default ("auto": a line in a kernel, nothing
elsewhere), checked in a real kernel and a plain Python process against a real vomni-sim (issue 7 item 13)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from vomni_nb.errors import InvalidRequestError
from vomni_nb.progress import JobStatusLine, resolve, status_text
from tests.support.kernels import REPO, KernelSession


class Line:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def update(self, text: str, html_text: str | None = None) -> None:
        self.calls.append(("update", text))

    def finish(self, text: str, html_text: str | None = None) -> None:
        self.calls.append(("finish", text))


def test_status_text_for_each_state() -> None:
    job = {"id": "video_gen_1", "size": "832x480", "num_frames": 81}
    assert status_text({**job, "status": "queued"}, 1.04) == "video_gen_1: queued … 1.0 s"
    assert status_text({**job, "status": "in_progress", "progress": 40}, 5) == "video_gen_1: in progress 40% … 5.0 s"
    assert status_text({**job, "status": "in_progress", "progress": 0}, 5) == "video_gen_1: in progress … 5.0 s"
    assert status_text({**job, "status": "completed"}, 31.2) == "video_gen_1: done in 31.2 s (832x480, 81 frames)"
    failed = {**job, "status": "failed", "error": {"message": "CUDA out of memory."}}
    assert status_text(failed, 3) == "video_gen_1: failed after 3.0 s (CUDA out of memory)"
    assert "resume with client.wait_video('video_gen_1')" in status_text({**job, "status": "left_running"}, 9)


def test_one_line_updated_then_finished() -> None:
    now = [0.0]
    line = Line()
    report = JobStatusLine(line, clock=lambda: now[0])
    for status, at in (("queued", 0.0), ("in_progress", 1.5), ("completed", 4.0)):
        now[0] = at
        report({"id": "v", "status": status})
    assert line.calls == [("update", "◔ v: queued … 0.0 s"), ("update", "◔ v: in progress … 1.5 s"),
                          ("finish", "✓ v: done in 4.0 s")]


def test_auto_is_nothing_outside_a_kernel_and_a_bad_value_is_refused() -> None:
    assert resolve("auto") is None and resolve(None) is None
    seen: list[Any] = []
    assert resolve(seen.append) == seen.append
    with pytest.raises(InvalidRequestError, match="on_progress must be a callable"):
        resolve("yes")  # type: ignore[arg-type]


def test_video_shows_a_live_line_in_a_kernel_and_nothing_in_plain_python(video_server) -> None:  # type: ignore[no-untyped-def]
    code = (f"from vomni_nb import OmniClient\nclient = OmniClient({video_server.url!r})\n"
            "video = client.video('a boat', size='64x64', seconds=1, fps=8, poll_interval=0.05)")
    kernel = KernelSession()
    try:
        reply, messages = kernel.run(code, timeout=120)
    finally:
        kernel.close()
    assert reply["status"] == "ok"
    shown = [(m["msg_type"], m["content"]["data"]["text/plain"]) for m in messages
             if m["msg_type"] in ("display_data", "update_display_data")]
    assert shown[0][0] == "display_data" and all(kind == "update_display_data" for kind, _ in shown[1:])
    assert "queued" in shown[0][1] and shown[-1][1].startswith("✓ video_gen_") and "done in" in shown[-1][1]
    assert len({m["content"]["transient"]["display_id"] for m in messages if "transient" in m.get("content", {})}) == 1
    plain = subprocess.run([sys.executable, "-c", code + "\nprint(video.num_frames)"], capture_output=True, text=True,
                           check=True, cwd=REPO)
    assert plain.stdout == "9\n"  # nothing printed but what the script printed itself
