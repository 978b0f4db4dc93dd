"""Shared fixtures: real vomni-sim processes on free 127.0.0.1 ports.

Every test that talks to a server talks to a real one started here. Session-scoped servers
are shared by read-only tests; tests that change server state (faults, voices, api keys)
start their own with ``start_sim``. Plain helpers (model ids, ``launch_sim``, ``free_port``) live in
``tests/support/sims.py``.
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests.support.hostile import HostileServer, launch_hostile
from tests.support.sims import (
    EDIT_MODEL,
    IMAGE_MODEL,
    OMNI_MODEL,
    TTS_MODEL,
    VIDEO_MODEL,
    STAND_IN,
    SimHandle,
    chromium_path,
    free_port,
    launch_sim,
)

# No per-example deadline: on a busy 2-core machine a slow example is load, not a bug (issue 16.10);
# every hypothesis test inherits this profile.
settings.register_profile("vomni_nb", deadline=None)
settings.load_profile("vomni_nb")


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


@pytest.fixture
def hostile() -> Iterator[Callable[..., HostileServer]]:
    """Factory: ``hostile(mode, *args)`` starts a hostile server (``tests/support/hostile.py``); all killed at teardown."""
    started: list[HostileServer] = []

    def start(mode: str, *args: str) -> HostileServer:
        server = launch_hostile(mode, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


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


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but Chromium is missing: browser tests must run in CI (apt-get install chromium)")
        pytest.skip("Chromium not installed: browser tests skipped (apt-get install chromium to run them)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _history_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every result the client makes is recorded in the history: the tests' go to a folder of their own
    (kernels, notebooks and writer processes they start inherit it), never to the user's cache dir."""
    path = tmp_path_factory.mktemp("history") / "history.sqlite3"
    before = os.environ.get("VOMNI_HISTORY")
    os.environ["VOMNI_HISTORY"] = str(path)
    yield path
    if before is None:
        os.environ.pop("VOMNI_HISTORY", None)
    else:
        os.environ["VOMNI_HISTORY"] = before


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Collect garbage after every test, so an unclosed socket or file is reported by the test that leaked
    it (warnings are errors), not by whichever test happens to run when the collector does."""
    yield
    gc.collect()


@pytest.fixture
def magic_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """An in-process IPython shell with vomni_nb's magics loaded and a private, empty server manager
    (attach the test's simulators to ``vomni_nb.default_manager()``). The magics' environment settings
    are cleared and the history goes to the test's folder; settings made with ``%config`` end with the test
    (the magics stay registered: the shell is IPython's one instance, which other tests load into too)."""
    from IPython.core.interactiveshell import InteractiveShell

    from vomni_nb.magics import VomniMagics, load_ipython_extension
    from vomni_nb.magics._common import ENVIRONMENT
    from vomni_nb.server import ServerManager, set_default_manager

    for variable in ENVIRONMENT.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("VOMNI_BASE_URL", raising=False)
    monkeypatch.setenv("VOMNI_HISTORY", str(tmp_path / "history"))
    manager = ServerManager(registry_dir=tmp_path / "registry", register_atexit=False)
    with set_default_manager(manager):
        shell = InteractiveShell.instance()
        load_ipython_extension(shell)
        try:
            yield shell
        finally:
            for section in [name for name in shell.config if name.endswith("Magics")]:
                del shell.config[section]
            for magics in shell.configurables:
                if isinstance(magics, VomniMagics):
                    for name in magics.trait_names(config=True):
                        setattr(magics, name, None)
            manager.shutdown(grace=2.0)


@pytest.fixture
def stand_in_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """`vllm` and `nvidia-smi` are the stand-ins (tests/support/stand_in); the registry is private to the
    test (returned). Every failure knob is cleared, and the stand-in loads for 0.1 s."""
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    for knob in ("STANDIN_FAIL", "STANDIN_NO_GPU", "STANDIN_BIND_DELAY", "VLLM_API_KEY"):
        monkeypatch.delenv(knob, raising=False)
    monkeypatch.setenv("STANDIN_DELAY", "0.1")
    return tmp_path / "registry"


@pytest.fixture
def stand_in_manager(stand_in_env: Path) -> Iterator[Any]:
    """A ServerManager over the stand-ins, on a free default port; everything it started is ended after."""
    from vomni_nb.server import ServerManager
    from vomni_nb.server.launch import group_alive

    manager = ServerManager(register_atexit=False, default_port=free_port())
    yield manager
    manager.shutdown(grace=2.0)
    for entry in manager.registry.entries():  # kept servers too: a test must leave nothing behind
        if group_alive(entry.pgid):
            os.killpg(entry.pgid, signal.SIGKILL)
