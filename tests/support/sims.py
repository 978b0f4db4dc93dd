"""Helpers the tests share: model ids, free ports, and real vomni-sim processes on 127.0.0.1.

Fixtures live in ``tests/conftest.py``; plain helpers live here so test modules import them from one
place (``from tests.support.sims import launch_sim``) rather than from the conftest.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

__all__ = [
    "IMAGE_MODEL", "EDIT_MODEL", "OMNI_MODEL", "TTS_MODEL", "VIDEO_MODEL", "STARTUP_TIMEOUT", "STAND_IN",
    "free_port", "SimHandle", "launch_sim", "chromium_path",
]

STAND_IN = Path(__file__).resolve().parent / "stand_in"

IMAGE_MODEL = "Tongyi-MAI/Z-Image-Turbo"
EDIT_MODEL = "Qwen/Qwen-Image-Edit"
OMNI_MODEL = "Qwen/Qwen3-Omni-30B-A3B-Instruct"
TTS_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice"
VIDEO_MODEL = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"

STARTUP_TIMEOUT = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class SimHandle:
    """A running vomni-sim process started by the tests."""

    model: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    api_key: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 5.0) -> str:
        """Wait until ``text`` appears in the server log; return the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not in vomni-sim log after {timeout}s:\n{self.log()[-3000:]}")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def _wait_ready(handle: SimHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(f"vomni-sim exited with {handle.process.returncode}:\n{handle.log()[-3000:]}")
        try:
            if httpx.get(handle.url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    handle.stop()
    raise RuntimeError(f"vomni-sim not ready after {timeout}s:\n{handle.log()[-3000:]}")


def launch_sim(
    model: str,
    *args: str,
    log_dir: Path,
    api_key: str | None = None,
    wait: bool = True,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> SimHandle:
    """Start ``python -m vomni_nb.sim MODEL --port P ...`` (a free port unless ``port``); wait for /health == 200
    unless ``wait=False``."""
    port = free_port() if port is None else port
    log_path = log_dir / f"vomni-sim-{port}.log"
    cmd = [sys.executable, "-m", "vomni_nb.sim", model, "--host", "127.0.0.1", "--port", str(port), *args]
    if api_key:
        cmd += ["--api-key", api_key]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.setdefault("VOMNI_SIM_STORAGE", str(log_dir / f"storage-{port}"))
    full_env.setdefault("VOMNI_SIM_VOICES_DIR", str(log_dir / f"voices-{port}"))
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=full_env)
    handle = SimHandle(model=model, port=port, process=process, log_path=log_path, api_key=api_key)
    if wait:
        _wait_ready(handle, STARTUP_TIMEOUT)
    return handle


def chromium_path() -> str | None:
    """Debian's Chromium, if installed (browser tests need it)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None
