"""%omni_server in an in-process IPython shell: parsing, outputs, and errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from tests.support.sims import free_port
from vomni_nb.magics.server import ServerCommandError, _split_extra
from vomni_nb.server import ServerManager, set_default_manager

from tests.support.sims import STAND_IN  # noqa: E402
MODEL = "Qwen/Qwen-Image"


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("PATH", f"{STAND_IN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_DELAY", "0.1")
    monkeypatch.delenv("STANDIN_FAIL", raising=False)
    manager = ServerManager(registry_dir=tmp_path / "reg", register_atexit=False, default_port=free_port())
    with set_default_manager(manager):
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "vomni_nb")
        yield ip
        manager.shutdown(grace=2.0)


def _text(captured: object) -> str:
    return "\n".join(out.data.get("text/plain", "") for out in captured.outputs)  # type: ignore[attr-defined]


def test_split_extra_passes_everything_after_double_dash() -> None:
    assert _split_extra("start m --port 5 -- --x 'a b'") == ("start m --port 5", ["--x", "a b"])
    assert _split_extra("list") == ("list", [])


def test_start_status_logs_list_stop(shell: InteractiveShell) -> None:
    with capture_output() as started:
        shell.run_line_magic("omni_server", f"start {MODEL} --name img -- --vae-use-tiling")
    with capture_output() as status:
        shell.run_line_magic("omni_server", "status img")
    assert "ready" in _text(status) and "img" in _text(status)
    with capture_output() as logs:
        shell.run_line_magic("omni_server", "logs img -n 3")
    assert len(_text(logs).splitlines()) == 3
    with capture_output() as listed:
        shell.run_line_magic("omni_server", "list")
    assert "img" in _text(listed) and "ready" in _text(listed)
    assert "<table>" in listed.outputs[0].data["text/html"]
    with capture_output() as stopped:
        shell.run_line_magic("omni_server", "stop img")
    assert "stopped img" in _text(stopped)
    assert started.outputs == []  # outside a kernel no live line; test_kernel_server checks it in one


def test_bad_input_is_a_usage_error(shell: InteractiveShell) -> None:
    for line in ("frobnicate", "start", "start m --port nine", "status -- --x", "start m --gpus a", "start 'm"):
        with pytest.raises(UsageError):
            shell.run_line_magic("omni_server", line)


def test_an_unparsable_line_does_not_echo_its_key(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="cannot parse") as caught:
        shell.run_line_magic("omni_server", "start 'm --api-key sk-typed-secret-1")
    assert "sk-typed-secret-1" not in str(caught.value)


def test_a_failed_start_renders_cause_advice_and_tail(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "oom")
    with pytest.raises(ServerCommandError) as caught:
        shell.run_line_magic("omni_server", f"start {MODEL}")
    rendered = "\n".join(caught.value._render_traceback_())
    assert "ServerExited" in rendered and "Advice:" in rendered and "last log lines" in rendered
    assert "CUDA out of memory" in rendered and "Traceback (most recent call last)" in rendered  # the log's, not ours


def test_use_and_unknown_names(shell: InteractiveShell) -> None:
    shell.run_line_magic("omni_server", f"start {MODEL}")
    with capture_output() as used:
        shell.run_line_magic("omni_server", "use qwen-image")
    assert "default server: Qwen/Qwen-Image" in _text(used)
    with pytest.raises(ServerCommandError):
        shell.run_line_magic("omni_server", "stop nothing-like-this")


def test_start_returns_the_server_and_its_client_talks_to_it(shell: InteractiveShell) -> None:
    from vomni_nb import OmniClient, Server

    server = shell.run_line_magic("omni_server", "start Tongyi-MAI/Z-Image-Turbo --sim")
    assert isinstance(server, Server) and server.kind == "sim"
    with server.client() as client:
        assert isinstance(client, OmniClient) and client.base_url == server.url
        assert client.health()
    assert shell.run_line_magic("omni_server", "restart") is server
    assert shell.run_line_magic("omni_server", "status") is None  # only start, restart and attach return one


def test_a_failed_start_says_its_cause_once(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "oom")
    with pytest.raises(ServerCommandError) as caught:
        shell.run_line_magic("omni_server", f"start {MODEL}")
    rendered = caught.value._render_traceback_()
    ours = rendered[: next(i for i, line in enumerate(rendered) if line.startswith("--- last log lines"))]
    assert "\n".join(ours).count("CUDA out of memory") == 1, ours


def test_list_reports_registry_rows_it_skipped(shell: InteractiveShell) -> None:
    from vomni_nb.server import default_manager

    registry = default_manager().registry
    registry.directory.mkdir(parents=True, exist_ok=True)
    registry.path.write_text('{"version": 1, "servers": [{"id": "x", "pid": 0}]}')
    with capture_output() as listed:
        shell.run_line_magic("omni_server", "list")
    assert "note: skipped row 1" in _text(listed) and "pid is 0" in _text(listed)


def test_loading_the_extension_imports_no_client_pil_httpx_or_manager() -> None:
    # The magics module alone (the package's own __init__ is skipped: its imports are the client side's),
    # in a fresh interpreter, then a magic run: only then does the manager load.
    code = textwrap.dedent(f"""
        import sys, types
        package = types.ModuleType("vomni_nb")
        package.__path__ = [{str(Path(__file__).resolve().parents[2] / "vomni_nb")!r}]
        sys.modules["vomni_nb"] = package
        from IPython.core.interactiveshell import InteractiveShell
        import vomni_nb.magics
        vomni_nb.magics.load_ipython_extension(InteractiveShell.instance())
        heavy = ("httpx", "PIL", "vomni_nb.client", "vomni_nb.server.manager", "psutil")
        print(sorted(name for name in heavy if name in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_logs_stop_restart_without_a_name_ask_which_when_several_run(shell: InteractiveShell) -> None:
    shell.run_line_magic("omni_server", f"start {MODEL} --name a")
    shell.run_line_magic("omni_server", "start Qwen/Qwen-Image-Edit --name b")
    for action in ("logs", "stop", "restart"):
        with pytest.raises(UsageError, match=rf"several servers run \(a, b\); say which: `%omni_server {action} NAME`"):
            shell.run_line_magic("omni_server", action)
    shell.run_line_magic("omni_server", "use b")
    with capture_output() as logs:
        shell.run_line_magic("omni_server", "logs -n 2")  # a default is named: no question
    assert len(_text(logs).splitlines()) == 2


def test_a_failed_start_says_what_it_replaced_first(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    first = shell.run_line_magic("omni_server", f"start {MODEL}")
    url, pid = first.url, first.pid
    monkeypatch.setenv("STANDIN_FAIL", "oom")
    with pytest.raises(ServerCommandError) as caught:
        shell.run_line_magic("omni_server", f"start {MODEL} -- --vae-use-tiling")  # other arguments: replaces it
    rendered = "\n".join(caught.value._render_traceback_())
    assert f"Before this start, it replaced the server at {url} (pid {pid})" in rendered, rendered
    assert "Before this start" in str(caught.value.error)  # Python callers read it in the message too
