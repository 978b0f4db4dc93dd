"""ServerManager against real processes: the stand-in `vllm` (tests/stand_in) and vomni-sim."""

from __future__ import annotations

import logging
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
from vomni_nb.server.manager import PORT_RACE_RETRIES
from vomni_nb.server.launch import group_alive, group_members
from vomni_nb.server.command import build_command, build_env, parse_gpus
from vomni_nb.server.handle import LaunchSpec

MODEL = "Qwen/Qwen-Image"


@pytest.fixture
def manager(stand_in_manager: ServerManager) -> ServerManager:
    return stand_in_manager


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
def test_each_start_failure_names_its_cause(
    manager: ServerManager, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # How soon a failure is noticed is a latency: benchmarks/ready_latency.py measures it (issue 16 item 10).
    monkeypatch.setenv("STANDIN_FAIL", kind)
    with pytest.raises(ServerStartError) as caught:
        manager.start(MODEL, timeout=20)
    error = caught.value
    assert FAILURES[kind] in error.cause, error.cause
    assert error.kind == {"gated": "gated-model", "engine-death": "engine-dead"}.get(kind, kind)
    assert error.advice and error.log_tail and error.log_path
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
    # 3 s leaves a loaded CI machine time to start the stand-in and reach its loading phase.
    with pytest.raises(ServerStartTimeout) as caught:
        manager.start(MODEL, timeout=3.0)
    assert "not ready within 3 s" in caught.value.cause and "loading weights" in str(caught.value)
    assert manager.registry.entries() == []
    # Stopped, not left loading for its 60 s: the stand-in's whole group is gone when start() returns.
    log = Path(caught.value.log_path or "").read_text()
    pid = int(log.split("pid=")[1].split(")")[0])
    assert not group_alive(pid)


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


def test_an_auto_port_taken_before_the_server_binds_it_moves_to_the_next(
    manager: ServerManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # vLLM binds its port only after seconds of imports; a program that binds the port the manager
    # found free in that window makes the server exit with [Errno 98]. The stand-in's bind delay opens
    # the same window so the test can take the port in it, as a busy machine does by chance.
    monkeypatch.setenv("STANDIN_BIND_DELAY", "1.5")
    first = manager.default_port
    holder = socket.socket()
    took = threading.Event()

    def take_the_port_once_launched() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(e.port == first for e in manager.registry.entries()):
            time.sleep(0.01)
        holder.bind(("127.0.0.1", first))
        took.set()

    thief = threading.Thread(target=take_the_port_once_launched)
    thief.start()
    reporter = _NoteReporter()
    try:
        server = manager.start(MODEL, reporter=reporter)
    finally:
        thief.join()
        holder.close()
    assert took.is_set()
    assert server.port is not None and server.port != first and server.status().state == "ready"
    assert reporter.notes == [f"port {first} taken by another program while it started"]
    failed = [p for p in manager.log_dir.glob("*.log") if f"{first}" in p.name]
    assert len(failed) == 1 and "[Errno 98]" in failed[0].read_text()


def test_a_port_in_use_is_retried_only_on_a_port_the_manager_chose(
    manager: ServerManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "port-in-use")
    with pytest.raises(ServerExited) as caught:
        manager.start(MODEL, port=free_port())
    assert caught.value.kind == "port-in-use" and len(list(manager.log_dir.glob("*.log"))) == 1
    with pytest.raises(ServerExited) as caught:
        manager.start(MODEL)  # every port fails: a few tries, then the diagnosis
    assert caught.value.kind == "port-in-use"
    assert len(list(manager.log_dir.glob("*.log"))) == 1 + 1 + PORT_RACE_RETRIES
    assert manager.servers == [] and manager.registry.entries() == []


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
    # A private server's key stays in this kernel's memory; only a kept one (which another kernel may
    # adopt) writes it to the registry file.
    assert key not in manager.registry.path.read_text()
    assert manager.start(MODEL, api_key="auto", keep=True) is server
    assert key in manager.registry.path.read_text()
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


def test_orphans_are_adopted_or_ended(manager: ServerManager, stand_in_env: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vomni_nb.server")
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
    said = [record.getMessage() for record in caplog.records]
    assert f"adopted {MODEL} at http://127.0.0.1:" in "\n".join(said)
    assert any(line.startswith(f"terminating {MODEL} (pid {ended_pid}") and "orphan" in line for line in said)


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


# ---- issue 7: what a new user trips over ----------------------------------------------------------


class _Notes:
    """A reporter that keeps the ready lines' notes."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def phase(self, model: str, phase: str, elapsed: float) -> None:
        pass

    def done(self, server: object, *, reused: bool, note: str = "") -> None:
        self.notes.append(note)

    def failed(self, model: str, error: object, elapsed: float) -> None:
        pass


def _books_match_registry(manager: ServerManager) -> bool:
    """Every server this kernel registered is in its books (so it is listed as ours and stopped at exit)."""
    ours = {e.pid for e in manager.registry.entries() if e.owner_pid == os.getpid()}
    return ours == {s.pid for s in manager.servers if s.owned}


def test_attach_never_stops_a_managed_server_of_the_same_model(manager: ServerManager, start_sim: Any) -> None:
    managed = manager.start(IMAGE_MODEL, sim=True)
    elsewhere = start_sim(IMAGE_MODEL)
    attached = manager.attach(elsewhere.url)
    # The model id names the managed server already: the attached one gets a distinct name, nothing stops.
    assert attached.name == f"{IMAGE_MODEL}@127.0.0.1:{elsewhere.port}" and not attached.owned
    assert managed.alive() and manager.get(IMAGE_MODEL) is managed and len(manager.servers) == 2
    assert httpx.get(managed.url + "/health").status_code == 200
    with pytest.raises(ServerManagerError, match="--name") as refused:  # a name asked for: a clear refusal
        manager.attach(elsewhere.url, name=IMAGE_MODEL)
    assert "stops nothing" in str(refused.value)
    assert managed.alive() and manager.attach(elsewhere.url) is attached  # attaching twice is one server


def test_a_start_that_takes_a_name_stops_its_holder_and_says_so(manager: ServerManager) -> None:
    reporter = _Notes()
    first = manager.start(MODEL, name="img", reporter=reporter)
    first_pgid = first.pgid or 0
    second = manager.start(IMAGE_MODEL, sim=True, name="img", reporter=reporter)
    assert not group_alive(first_pgid) and manager.get("img") is second
    assert reporter.notes[-1].startswith(f"stopped the server that was called img ({MODEL} at ")
    # The same through a reuse: a running server renamed onto a taken name.
    third = manager.start(MODEL, reporter=reporter)
    third_pgid = third.pgid or 0
    again = manager.start(MODEL, name="img", reporter=reporter)
    assert again is third and again.reused and manager.get("img") is third
    assert not group_alive(second.pgid or 0) and group_alive(third_pgid)
    assert "stopped the server that was called img" in reporter.notes[-1]
    assert _books_match_registry(manager)  # nothing dropped from the books, so nothing outlives the kernel
    manager.shutdown(grace=2.0)
    assert not group_alive(third_pgid)


@pytest.fixture
def other_kernel(stand_in_env: Path) -> Iterator[Any]:
    """Start ``code`` in another live "kernel" (a Python process that waits on stdin) with the same registry;
    its first line of output is returned. Closing its stdin ends it (and its servers, at exit)."""
    started: list[subprocess.Popen[str]] = []

    def run(code: str) -> str:
        env = {**os.environ, "VOMNI_REGISTRY_DIR": str(stand_in_env)}
        script = ("import sys\nfrom vomni_nb.server import ServerManager\nm = ServerManager()\n"
                  + textwrap.dedent(code) + "\nsys.stdin.read()\n")
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        started.append(proc)
        assert proc.stdout is not None
        return proc.stdout.readline().strip()

    yield run
    for proc in started:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.wait(30)
        proc.stdout.close()


def test_a_second_kernel_is_told_who_serves_the_model(manager: ServerManager, other_kernel: Any) -> None:
    kernel, pid, url = other_kernel(
        f"import os; s = m.start({MODEL!r}, port={free_port()}); print(os.getpid(), s.pid, s.url, flush=True)").split()
    with pytest.raises(ServerManagerError) as refused:
        manager.start(MODEL)
    said = str(refused.value)
    assert f"kernel {kernel} already serves {MODEL} at {url}" in said and f"%omni_server attach {url}" in said
    assert f"%omni_server start {MODEL} --keep" in said and "--another" in said
    assert manager.servers == [] and group_alive(int(pid))
    shared = manager.attach(url)  # what the advice says: use that one
    assert shared.model == MODEL and not shared.owned
    manager.stop(shared)
    copy = manager.start(MODEL, another=True)  # or, asked for explicitly, a second copy
    assert copy.pid != int(pid) and group_alive(int(pid))

    # The simulator is cheap: a second copy starts, and its ready line says who else serves the model.
    sim_url = other_kernel(f"print(m.start({IMAGE_MODEL!r}, sim=True, port={free_port()}).url, flush=True)")
    reporter = _Notes()
    mine = manager.start(IMAGE_MODEL, sim=True, reporter=reporter)
    assert mine.url != sim_url and f"already serves {IMAGE_MODEL} at {sim_url}" in reporter.notes[-1]


def test_advice_names_only_options_that_exist(manager: ServerManager) -> None:
    manager.start(MODEL)
    manager.start(IMAGE_MODEL, sim=True)
    with pytest.raises(ServerManagerError) as several:
        manager.server_for()
    assert "%omni_server use NAME" in str(several.value) and "--server" not in str(several.value)
    with pytest.raises(ServerManagerError, match=r"%omni_server start Wan-AI/Wan2.2-TI2V-5B-Diffusers"):
        manager.server_for("Wan-AI/Wan2.2-TI2V-5B-Diffusers")


def test_every_omni_server_line_in_advice_parses() -> None:
    # Advice is only useful when it can be typed as it is: each `%omni_server ...` it shows must parse.
    import re

    from vomni_nb import _advice
    from vomni_nb.magics import ServerMagics
    from IPython.core.magic_arguments import parse_argstring

    texts = [_advice.START_ONE, _advice.PICK_ONE, _advice.server_logs("img", 200), _advice.server_restart("img"),
             _advice.server_stop("img"), _advice.serve_model("org/m"), _advice.attach_instead("http://h:1"),
             _advice.keep_to_share("org/m"), _advice.stops_with_kernel("org/m"), _advice.name_taken("img", "org/m at http://h:1"),
             _advice.served_elsewhere("org/m", 7, "http://h:1"), _advice.second_copy("org/m", 7, "http://h:1"),
             _advice.sim_family(), _advice.name_which("logs", "a, b")]
    lines = [found.split(" -- ")[0] for text in texts for found in re.findall(r"`%omni_server ([^`]+)`", text)]
    assert len(lines) >= len(texts)
    for line in lines:
        parse_argstring(ServerMagics.omni_server, line)


def test_start_keep_on_a_running_server_keeps_it(manager: ServerManager) -> None:
    server = manager.start(MODEL)
    watchdog = server.run.watchdog if server.run else None
    assert watchdog is not None and not server.keep
    again = manager.start(MODEL, keep=True)
    assert again is server and server.keep and server.run is not None and server.run.watchdog is None
    assert watchdog.poll() is not None  # the watchdog is gone: nothing ends the server with the kernel
    assert [e.keep for e in manager.registry.entries()] == [True]
    pid = server.pid or 0
    manager.shutdown(grace=2.0)
    try:
        assert group_alive(pid)
    finally:
        os.killpg(pid, signal.SIGKILL)
        server.run.process.wait(5)  # type: ignore[union-attr]  # our child: reap it


def test_a_failed_restart_leaves_nothing_behind(manager: ServerManager, monkeypatch: pytest.MonkeyPatch) -> None:
    server = manager.start(MODEL)
    old_pgid = server.pgid or 0
    monkeypatch.setenv("STANDIN_FAIL", "oom")
    with pytest.raises(ServerExited) as caught:
        manager.restart(MODEL)
    log = Path(caught.value.log_path or "").read_text()
    new_pid = int(log.split("pid=")[1].split(")")[0])  # the failed run's engine worker
    assert not group_alive(old_pgid) and not group_alive(new_pid)
    assert manager.servers == [] and manager.registry.entries() == []
    with pytest.raises(ServerManagerError, match="no server is running"):
        manager.server_for()


def test_unreachable_status_names_the_logs_command(manager: ServerManager, start_sim: Any) -> None:
    server = manager.start(MODEL, name="img")
    os.killpg(server.pgid or 0, signal.SIGSTOP)  # hung: alive, but /health never answers
    try:
        status = server.status()
    finally:
        os.killpg(server.pgid or 0, signal.SIGCONT)
    assert status.state == "unreachable" and "%omni_server logs img" in status.advice
    sim = start_sim(TTS_MODEL)
    remote = manager.attach(sim.url)
    sim.stop()
    gone = remote.status()
    assert gone.state == "unreachable" and "started elsewhere" in gone.advice


def test_the_manager_probe_never_shows_the_api_key(manager: ServerManager) -> None:
    # A server that echoes the request (here the token of the Authorization header) in its error body: a
    # real vomni-sim never does that on /v1/models, so a small loopback server plays it. The token is
    # echoed without its "Bearer " prefix, so only the probe's own key redaction can hide it (the bearer
    # pattern alone let a probe that forgot the key pass, issue 16 item 2).
    import http.server

    key = "sk-echoed-secret-4242"

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            token = str(self.headers.get("Authorization")).removeprefix("Bearer ")
            # The token starts 5 characters before the probe's 200-character cut: shown whole, redacted
            # first ("***") or cut first (a 5-character piece of the key stays).
            status, body = (200, b"{}") if self.path == "/health" else (500, (
                "x" * 168 + f"bad request; the token was {token}").encode())
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(ServerManagerError, match="answered 500") as caught:
            manager.attach(f"http://127.0.0.1:{server.server_address[1]}", api_key=key)
    finally:
        server.shutdown()
        server.server_close()
    shown = str(caught.value)
    # The body was cut at 200 characters after redaction: not even a piece of the key is left.
    assert "the token was ***" in shown and key[:5] not in shown


def test_decisions_are_logged_without_the_key(manager: ServerManager, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vomni_nb.server")
    server = manager.start(MODEL, api_key="auto")
    manager.start(MODEL, api_key="auto")
    manager.start(MODEL, api_key="auto", extra_args=["--vae-use-tiling"])
    manager.stop()
    said = [record.getMessage() for record in caplog.records]
    for start in ("launched Qwen/Qwen-Image", "watchdog", "Qwen/Qwen-Image ready at", "reusing Qwen/Qwen-Image",
                  "replacing Qwen/Qwen-Image", "stopped Qwen/Qwen-Image"):
        assert any(line.startswith(start) for line in said), (start, said)
    assert server.api_key and all(server.api_key not in line for line in said)
