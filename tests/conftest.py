"""Shared fixtures: real vomni-sim processes on free 127.0.0.1 ports, and small helpers.

Every test that talks to a server talks to a real one started here. Session-scoped servers
are shared by read-only tests; tests that change server state (faults, voices, api keys)
start their own with ``start_sim``.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

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
) -> SimHandle:
    """Start ``python -m vomni_nb.sim MODEL --port P ...``; wait for /health == 200 unless ``wait=False``."""
    port = free_port()
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


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[Callable[..., SimHandle]]:
    """Factory: ``start_sim(model, *cli_args, api_key=None, wait=True)``; all stopped at teardown."""
    started: list[SimHandle] = []

    def start(model: str, *args: str, **kwargs: object) -> SimHandle:
        handle = launch_sim(model, *args, log_dir=tmp_path, **kwargs)  # type: ignore[arg-type]
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


def _session_sim(tmp_path_factory: pytest.TempPathFactory, model: str, *args: str) -> Iterator[SimHandle]:
    handle = launch_sim(model, *args, log_dir=tmp_path_factory.mktemp("sim"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    yield from _session_sim(tmp_path_factory, IMAGE_MODEL)


@pytest.fixture(scope="session")
def edit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    yield from _session_sim(tmp_path_factory, EDIT_MODEL)


@pytest.fixture(scope="session")
def omni_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    # A fast token rate keeps streaming tests quick; rate-specific tests start their own.
    yield from _session_sim(tmp_path_factory, OMNI_MODEL, "--tokens-per-second", "2000")


@pytest.fixture(scope="session")
def tts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    yield from _session_sim(tmp_path_factory, TTS_MODEL)


@pytest.fixture(scope="session")
def video_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    yield from _session_sim(tmp_path_factory, VIDEO_MODEL)


def chromium_path() -> str | None:
    """Debian's Chromium, if installed (browser tests need it)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium is missing: browser tests must run in CI (apt-get install chromium)")
        pytest.skip("Chromium not installed: browser tests skipped (apt-get install chromium to run them)")
    return path


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage after every test, so an unclosed socket or file is reported by the test that leaked
    it (warnings are errors), not by whichever test happens to run when the collector does."""
    yield
    gc.collect()
