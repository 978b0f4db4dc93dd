"""ServerManager against real processes: the stand-in `vllm` (tests/stand_in) and vomni-sim."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.sims import IMAGE_MODEL, TTS_MODEL, free_port
from vomni_nb.errors import (
    InvalidRequestError,
    NoGPUError,
    PortInUseError,
    ServerExited,
    ServerManagerError,
    ServerStartError,
    ServerStartTimeout,
)
from vomni_nb.server import ServerManager
from vomni_nb.server.launch import group_alive, group_members
from vomni_nb.server.command import build_command, build_env, parse_gpus
from vomni_nb.server.handle import LaunchSpec

from tests.support.sims import STAND_IN  # noqa: E402
MODEL = "Qwen/Qwen-Image"


@pytest.fixture
def stand_in_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """`vllm` and `nvidia-smi` are the stand-ins; the registry is private to the test."""
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    for knob in ("STANDIN_FAIL", "STANDIN_NO_GPU", "VLLM_API_KEY"):
        monkeypatch.delenv(knob, raising=False)
    monkeypatch.setenv("STANDIN_DELAY", "0.1")
    return tmp_path / "registry"


@pytest.fixture
def manager(stand_in_env: Path) -> Iterator[ServerManager]:
    mgr = ServerManager(register_atexit=False, default_port=free_port())
    yield mgr
    mgr.shutdown(grace=2.0)
    for entry in mgr.registry.entries():  # kept servers too: a test must leave nothing behind
        os.killpg(entry.pgid, signal.SIGKILL) if group_alive(entry.pgid) else None


def _wait_gone(pgid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not group_alive(pgid)


def test_start_is_ready_and_stop_ends_the_whole_group(manager: ServerManager) -> None:
    server = manager.start(MODEL)
    assert server.status().state == "ready"
    assert httpx.get(server.url + "/health").json() == {"status": "healthy"}
    assert server.owned and server.kind == "vllm" and server.ready_s is not None
    members = group_members(server.pgid or 0)
    assert len(members) >= 2, "the stand-in's engine worker should be in the group"
    assert [e.pid for e in manager.registry.entries()] == [server.pid]
    pgid = server.pgid or 0
    manager.stop(server)
    assert not group_alive(pgid)  # stop() returns only once the whole group is gone: no waiting here
    assert manager.registry.entries() == []
    assert manager.servers == []


def test_same_args_reuse_and_restart_gives_a_new_pid(manager: ServerManager) -> None:
    first = manager.start(MODEL)
    again = manager.start(MODEL)
    assert again is first and again.reused and again.pid == first.pid
    old_pid, old_pgid = first.pid, first.pgid or 0
    restarted = manager.restart(MODEL)
    assert restarted.pid != old_pid and restarted.status().state == "ready"
    assert restarted.port == first.port
    assert not group_alive(old_pgid)  # restart ended the old group before it returned


def test_other_args_replace_the_server_of_that_model(manager: ServerManager) -> None:
    first = manager.start(MODEL)
    old_pgid = first.pgid or 0
    second = manager.start(MODEL, extra_args=["--vae-use-tiling"])
    assert second.pid != old_pgid and group_alive(second.pgid or 0)
    assert not group_alive(old_pgid)
    assert len(manager.servers) == 1


class _NoteReporter:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def phase(self, model: str, phase: str, elapsed: float) -> None:
        pass

    def done(self, server: object, *, reused: bool, note: str = "") -> None:
        self.notes.append(note)

    def failed(self, model: str, error: object, elapsed: float) -> None:
        raise AssertionError("not expected")


def test_a_timeout_of_zero_or_less_is_refused_before_launching(manager: ServerManager) -> None:
    for timeout in (0, -1):
        with pytest.raises(InvalidRequestError, match="--timeout"):
            manager.start(MODEL, timeout=timeout)
    assert manager.servers == [] and list(manager.log_dir.glob("*.log")) == []


def test_the_start_line_says_which_server_gave_way(manager: ServerManager) -> None:
    reporter = _NoteReporter()
    first = manager.start(MODEL, reporter=reporter)
    old = f"{first.url} (pid {first.pid})"
    manager.start(MODEL, extra_args=["--vae-use-tiling"], reporter=reporter)
    assert reporter.notes[0] == "" and reporter.notes[1].startswith(f"replaced the server at {old}")


FAILURES = {
    "oom": "CUDA out of memory",
    "free-memory": "free GPU memory",
    "missing-model": "not found",
    "gated": "gated",
    "port-in-use": "port is already in use",
    "init-timeout": "did not start in time",
    "bad-flag": "--stage-configs-path",
    "engine-death": "engine died",
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_each_start_failure_names_its_cause_soon_after_the_exit(
    manager: ServerManager, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("STANDIN_FAIL", kind)
    with pytest.raises(ServerStartError) as caught:
        manager.start(MODEL, timeout=20)
    noticed = time.time()
    error = caught.value
    assert FAILURES[kind] in error.cause, error.cause
    assert error.advice and error.log_tail and error.log_path
    # The process wrote its last line just before it exited (or turned unhealthy).
    last_write = os.path.getmtime(error.log_path)
    assert noticed - last_write < 2.0
    if kind == "engine-death":
        assert not isinstance(error, ServerExited)
    else:
        assert isinstance(error, ServerExited) and error.returncode == (2 if kind == "bad-flag" else 1)
    assert manager.servers == [] and manager.registry.entries() == []


def test_a_failed_start_leaves_no_worker_behind(manager: ServerManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "oom")
    with pytest.raises(ServerExited) as caught:
        manager.start(MODEL)
    log = Path(caught.value.log_path or "").read_text()
    pid = int(log.split("pid=")[1].split(")")[0])
    assert not group_alive(pid), "the engine worker of the failed server must be ended with its group"


def test_timeout_stops_the_launch(manager: ServerManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_DELAY", "60")
    started = time.monotonic()
    # 3 s leaves a loaded CI machine time to start the stand-in and reach its loading phase.
    with pytest.raises(ServerStartTimeout) as caught:
        manager.start(MODEL, timeout=3.0)
    assert time.monotonic() - started < 12
    assert "not ready within 3 s" in caught.value.cause and "loading weights" in str(caught.value)
    assert manager.registry.entries() == []


def test_a_port_held_by_another_program_is_a_clear_error(manager: ServerManager) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError) as caught:
            manager.start(MODEL, port=port)
        assert f"port {port}" in str(caught.value) and "--port auto" in str(caught.value)
        manager.default_port = port
        server = manager.start(MODEL, port="auto")
        assert server.port is not None and server.port > port and server.status().state == "ready"


def test_port_held_by_our_own_server_names_it(manager: ServerManager) -> None:
    server = manager.start(MODEL)
    with pytest.raises(PortInUseError, match="Qwen/Qwen-Image"):
        manager.start("Tongyi-MAI/Z-Image-Turbo", port=server.port)


def test_auto_api_key_is_used_but_never_shown(manager: ServerManager) -> None:
    server = manager.start(MODEL, api_key="auto")
    key = server.api_key
    assert key and len(key) >= 20
    assert key not in repr(server) and "***" in repr(server)
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode()
    assert key not in cmdline
    assert httpx.get(server.url + "/v1/models").status_code == 401
    ok = httpx.get(server.url + "/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert ok.json()["data"][0]["id"] == MODEL
    assert key not in server.logs(200)
    assert manager.start(MODEL, api_key="auto") is server  # reused, same key
    other = manager.start(MODEL)  # no key asked: another server
    assert other.pid != server.pid and other.api_key is None


def test_no_gpu_is_refused_before_launch(manager: ServerManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_NO_GPU", "1")
    with pytest.raises(NoGPUError, match="--sim"):
        manager.start(MODEL)
    monkeypatch.delenv("STANDIN_NO_GPU")
    manager.nvidia_smi = "no-such-nvidia-smi"
    with pytest.raises(NoGPUError, match="not found"):
        manager.start(MODEL)
    manager.nvidia_smi = "nvidia-smi"
    with pytest.raises(NoGPUError, match="2 GPU"):
        manager.start(MODEL, gpus="0,5")
    assert manager.registry.entries() == []


def test_missing_vllm_suggests_sim(manager: ServerManager) -> None:
    manager.vllm_executable = "no-such-vllm"
    with pytest.raises(ServerStartError, match="--sim"):
        manager.start(MODEL)


def test_gpus_and_key_go_through_the_environment() -> None:
    spec = LaunchSpec(model="m/x", kind="vllm", gpus=parse_gpus("0,1"), extra_args=("--x",), keyed=True)
    env = build_env({"VLLM_API_KEY": "kernel-key", "A": "1"}, spec, "k1")
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1" and env["VLLM_API_KEY"] == "k1" and env["NO_COLOR"] == "1"
    assert "VLLM_API_KEY" not in build_env({"VLLM_API_KEY": "kernel-key"}, spec, None)
    assert build_command(spec, "127.0.0.1", 8091, vllm="vllm") == [
        "vllm", "serve", "m/x", "--omni", "--host", "127.0.0.1", "--port", "8091", "--x"]
    sim = LaunchSpec(model="m/x", kind="sim")
    assert build_command(sim, "127.0.0.1", 1, vllm="vllm", python="py")[:3] == ["py", "-m", "vomni_nb.sim"]
    for bad in ("a", "0,0", "-1"):
        with pytest.raises(ValueError):
            parse_gpus(bad)


def _other_kernel(code: str, registry: Path) -> str:
    """Run ``code`` in a separate Python process (another "kernel") with the same registry."""
    env = {**os.environ, "VOMNI_REGISTRY_DIR": str(registry)}
    script = "from vomni_nb.server import ServerManager\nm = ServerManager()\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_keep_outlives_its_kernel_and_is_reused_then_stopped(manager: ServerManager, stand_in_env: Path) -> None:
    port = free_port()
    pid = int(_other_kernel(f"print(m.start({MODEL!r}, keep=True, port={port}).pid)", stand_in_env))
    # That kernel has exited; the kept server lives on, listed in the registry.
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    assert any(s.pid == pid and s.keep for s in manager.list_servers())
    reused = manager.start(MODEL)
    assert reused.pid == pid and reused.reused and reused.keep
    manager.shutdown()  # kernel exit: a kept server stays
    assert group_alive(pid)
    said = _other_kernel(f"print(m.stop({MODEL!r}))", stand_in_env)
    assert "stopped" in said and not group_alive(pid)


def test_orphans_are_adopted_or_ended(manager: ServerManager, stand_in_env: Path) -> None:
    # A kernel whose watchdog also died (the worst case): its server is an orphan in the registry.
    orphan_code = f"""
        import os, signal
        s = m.start({MODEL!r}, port=PORT)
        s.run.watchdog.kill(); s.run.watchdog.wait()
        print(s.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """

    def make_orphan() -> int:
        env = {**os.environ, "VOMNI_REGISTRY_DIR": str(stand_in_env)}
        script = "from vomni_nb.server import ServerManager\nm = ServerManager()\n" + textwrap.dedent(
            orphan_code.replace("PORT", str(free_port())))
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        return int(done.stdout.strip())

    adopted_pid = make_orphan()
    assert group_alive(adopted_pid)
    assert any(s.pid == adopted_pid and "orphan" in s.kind for s in manager.list_servers())
    adopted = manager.start(MODEL)
    assert adopted.pid == adopted_pid and adopted.reused
    assert adopted.run is not None and adopted.run.watchdog is not None  # ours now, cleaned up with us
    manager.stop(adopted)
    assert not group_alive(adopted_pid)

    ended_pid = make_orphan()
    manager.start(MODEL, extra_args=["--vae-use-tiling"])  # different args: the orphan is ended
    assert not group_alive(ended_pid)


def test_attach_learns_the_model_and_never_stops_it(manager: ServerManager, image_server: object) -> None:
    url = image_server.url  # type: ignore[attr-defined]
    server = manager.attach(url, name="remote-img")
    assert server.model == IMAGE_MODEL and server.kind == "remote" and not server.owned
    assert manager.url_for(IMAGE_MODEL) == url
    said = manager.stop("remote-img")
    assert "not stopped" in said
    assert httpx.get(url + "/health").status_code == 200
    with pytest.raises(ServerManagerError, match="nothing answers"):
        manager.attach(f"http://127.0.0.1:{free_port()}")


def test_attach_to_a_keyed_server_takes_the_key_from_the_environment(
    manager: ServerManager, start_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = start_sim(TTS_MODEL, api_key="sekrit-key-123")
    monkeypatch.delenv("VOMNI_API_KEY", raising=False)
    with pytest.raises(ServerManagerError, match="VOMNI_API_KEY"):
        manager.attach(sim.url)
    with pytest.raises(ServerManagerError, match="refused the API key") as wrong:
        manager.attach(sim.url, api_key="not-the-key-456")
    assert "not-the-key-456" not in str(wrong.value)
    monkeypatch.setenv("VOMNI_API_KEY", "sekrit-key-123")
    server = manager.attach(sim.url)
    assert server.model == TTS_MODEL and server.api_key is None
    assert "sekrit-key-123" not in repr(server)


def test_two_sims_and_each_request_reaches_its_model(manager: ServerManager) -> None:
    image = manager.start(IMAGE_MODEL, sim=True)
    tts = manager.start(TTS_MODEL, sim=True)
    assert image.port != tts.port and image.kind == tts.kind == "sim"
    with pytest.raises(ServerManagerError, match="several servers"):
        manager.server_for()
    with manager.server_for(IMAGE_MODEL).client() as client:
        picture = client.image("a red fox", size="64x64", seed=1)
    assert picture.server_url == image.url and picture.width == 64
    with manager.server_for("qwen3-tts-12hz-1.7b-customvoice").client() as client:  # the short name works too
        speech = client.speak("hello")
    assert speech.server_url == tts.url and speech.audio
    manager.use(TTS_MODEL)
    assert manager.server_for() is tts
    with pytest.raises(ServerManagerError, match="no server serves"):
        manager.server_for("Wan-AI/Wan2.2-TI2V-5B-Diffusers")


def test_status_reports_a_later_engine_death_then_the_exit(manager: ServerManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "engine-death")
    monkeypatch.setenv("STANDIN_DEATH_AFTER", "0.5")
    monkeypatch.setenv("STANDIN_DEATH_EXIT", "1.0")
    server = manager.start(MODEL)
    assert server.status().state == "ready"
    deadline = time.monotonic() + 5
    states = []
    while time.monotonic() < deadline:
        status = server.status()
        states.append(status.state)
        if status.state == "exited":
            break
        time.sleep(0.05)
    assert "unhealthy" in states and states[-1] == "exited"
    assert "engine died" in status.cause and status.returncode == 1


class _InterruptOnPhase:
    """Records phases; a real SIGINT reaches the main thread (as a kernel interrupt does) once ``phase`` is seen."""

    def __init__(self, phase: str) -> None:
        self.phases: list[str] = []
        self.failures: list[BaseException] = []
        self._seen = threading.Event()
        self._phase = phase
        main = threading.main_thread().ident
        assert main is not None
        self._thread = threading.Thread(
            target=lambda: self._seen.wait(60) and signal.pthread_kill(main, signal.SIGINT), daemon=True)
        self._thread.start()

    def phase(self, model: str, phase: str, elapsed: float) -> None:
        self.phases.append(phase)
        if phase == self._phase:
            self._seen.set()

    def done(self, server: object, *, reused: bool, note: str = "") -> None:
        raise AssertionError("not expected")

    def failed(self, model: str, error: BaseException, elapsed: float) -> None:
        self.failures.append(error)


@pytest.fixture
def _default_sigint() -> Iterator[None]:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("_default_sigint")
def test_interrupting_a_start_ends_the_half_started_server(manager: ServerManager, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_DELAY", "30")
    reporter = _InterruptOnPhase("loading weights")
    with pytest.raises(KeyboardInterrupt):
        manager.start(MODEL, reporter=reporter)
    assert reporter.phases[0] in ("launching", "starting") and reporter.phases[-1] == "loading weights"
    # The reporter heard of the interrupt itself (the live line ends as a static "interrupted" summary).
    assert [type(error) for error in reporter.failures] == [KeyboardInterrupt]
    assert manager.registry.entries() == [] and manager.servers == []
    (log,) = manager.log_dir.glob("*.log")
    pid = int(log.read_text().split("pid=")[1].split(")")[0])
    assert not group_alive(pid)


def test_a_name_names_one_server(manager: ServerManager) -> None:
    first = manager.start(MODEL, name="main")
    old_pgid = first.pgid or 0
    second = manager.start("Tongyi-MAI/Z-Image-Turbo", name="main")
    assert manager.get("main") is second and not group_alive(old_pgid)
    assert [s.name for s in manager.servers] == ["main"]


def test_flags_the_manager_sets_are_refused_after_double_dash(manager: ServerManager) -> None:
    for extra in (["--port", "9"], ["--api-key=k"], ["--host", "0.0.0.0"]):
        with pytest.raises(ValueError, match="not allowed"):
            manager.start(MODEL, extra_args=extra)


def test_old_logs_are_pruned(tmp_path: Path) -> None:
    from vomni_nb.server.logfiles import prune_logs

    for n in range(5):
        path = tmp_path / f"m-8091-20250101-00000{n}-abcdef.log"  # named as the manager names its logs
        path.write_text("x")
        os.utime(path, (1000 + n, 1000 + n))
    prune_logs(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("*.log")) == ["m-8091-20250101-000003-abcdef.log",
                                                              "m-8091-20250101-000004-abcdef.log"]
