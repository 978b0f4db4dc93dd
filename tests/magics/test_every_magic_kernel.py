"""The magics no other kernel test runs, in one real kernel (jupyter_client) against real simulators:
%%omni_edit on a history id, %omni_history, %omni_rerun, %%omni_speak --batch, %omni_voice,
%omni_studio and %omni_server panel. Each cell succeeds and leaves a static output a saved notebook keeps
(the widgets' static form too: nbclient-like, allow_stdin false)."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.support.kernels import KernelSession

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def _outputs(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The data of every display (the last state of each updated output, in order)."""
    shown: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for index, message in enumerate(messages):
        if message["msg_type"] not in ("display_data", "update_display_data", "execute_result"):
            continue
        key = message["content"].get("transient", {}).get("display_id") or f"#{index}"
        if key not in shown:
            order.append(key)
        shown[key] = message["content"]["data"]
    return [shown[key] for key in order if any(shown[key].values())]


def _ok(kernel: KernelSession, code: str) -> list[dict[str, Any]]:
    reply, messages = kernel.run(code, allow_stdin=False, timeout=120)
    assert reply["status"] == "ok", (code, reply.get("ename"), reply.get("evalue"))
    return _outputs(messages)


def test_every_remaining_magic_runs_in_a_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, image_server: Any,
                                                edit_server: Any, tts_server: Any) -> None:
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))
    with closing(KernelSession()) as kernel:
        _ok(kernel, "%load_ext vomni_nb")
        for url in (image_server.url, edit_server.url, tts_server.url):
            _ok(kernel, f"%omni_server attach {url}")
        _ok(kernel, "%%omni_image --size 32x32 --seed 5 --out pic\na lighthouse")
        reply, messages = kernel.run("print(pic.history_id)", allow_stdin=False)
        entry_id = int("".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream"))

        edited = _ok(kernel, f"%%omni_edit #{entry_id} --out night\nmake it night")
        assert "image/png" in edited[-1] and "ImageResult" in edited[-1]["text/plain"]
        table = _ok(kernel, "%omni_history -n 5")
        assert "a lighthouse" in table[-1]["text/plain"] and "make it night" in table[-1]["text/plain"]
        again = _ok(kernel, f"%omni_rerun {entry_id}")
        assert f"rerun of history #{entry_id}" in again[-1]["text/plain"] and "identical" in again[-1]["text/plain"]

        spoken = _ok(kernel, "%%omni_speak --batch --voice vivian\nFirst line.\nSecond line.")
        assert spoken[-1]["text/html"].count("<audio controls") == 2
        voices = _ok(kernel, "%omni_voice list")
        assert "vivian" in voices[-1]["text/plain"]

        studio = _ok(kernel, "%omni_studio --size 256x256 a kite")
        assert studio and "Studio" in studio[-1]["text/plain"]
        panel = _ok(kernel, "panel = %omni_server panel\npanel")
        assert panel and any(url in str(panel[-1]) for url in (image_server.url, tts_server.url))
        _ok(kernel, "panel.close()")
