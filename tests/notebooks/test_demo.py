"""`make demo HEADLESS=1` (tools/demo.py): the quickstart's simulators started ahead through the manager and
reused by the notebook's kernel, the quickstart executed to HTML, everything it started stopped at the end;
with another server on its port it takes the next free one and says so."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.notebooks import QUICKSTART
from tests.support.sims import IMAGE_MODEL, free_port
from tools import demo
from vomni_nb.server.launch import group_alive


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The notebook's kernels get a private registry; nothing else of the machine is used."""
    monkeypatch.setenv("VOMNI_REGISTRY_DIR", str(tmp_path / "registry"))
    monkeypatch.setenv("VOMNI_SIM_STORAGE", str(tmp_path / "storage"))
    monkeypatch.setenv("VOMNI_SIM_VOICES_DIR", str(tmp_path / "voices"))
    monkeypatch.delenv("VOMNI_URL", raising=False)
    monkeypatch.delenv("VOMNI_BASE_URL", raising=False)
    return tmp_path / "out"


def _check_html(out: Path) -> str:
    html = (out / f"{QUICKSTART.stem}.html").read_text(encoding="utf-8")
    # A large picture shows as a JPEG preview (the full file is in the history store).
    assert ("data:image/png;base64," in html or "data:image/jpeg;base64," in html) and "<audio controls" in html
    return html


def test_the_demo_starts_what_the_quickstart_starts() -> None:
    assert demo.NOTEBOOK == QUICKSTART
    assert demo.sim_models(QUICKSTART) == [IMAGE_MODEL, "Qwen/Qwen3-TTS-12Hz-1.7B-CustomVoice",
                                           "Qwen/Qwen3-Omni-30B-A3B-Instruct"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_make_demo_headless_writes_html(demo_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What `make demo HEADLESS=1` runs: its own vomni-sim on the given port, then the quickstart, to HTML."""
    port = free_port()
    assert demo.main(["--headless", "--port", str(port), "--out", str(demo_env)]) == 0
    html = _check_html(demo_env)
    said = capsys.readouterr().out
    assert f"vomni-sim serving {IMAGE_MODEL} (simulated) at http://127.0.0.1:{port}" in said
    assert "was taken" not in said
    # The notebook's own `%omni_server start ... --sim` lines reused the demo's servers, all three.
    assert html.count("reused at") == 3 and f"http://127.0.0.1:{port}" in html
    logs = sorted((demo_env / "servers" / "logs").glob("*.log"))
    assert len(logs) == 3
    for log in logs:
        assert "vomni-sim" in log.read_text() and f"its log: {log}" in said
        pid = int(log.read_text().split("pid=")[1].split(")")[0])
        assert not group_alive(pid), "the demo stops the servers it started"


class _Foreign(http.server.BaseHTTPRequestHandler):
    """Another program's HTTP server: healthy to any /health poll, and it counts every request it gets."""

    requests: list[str] = []

    def _answer(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        body = b'{"data": [{"id": "someone-elses-model"}]}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's naming

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def foreign_server() -> Iterator[tuple[int, list[str]]]:
    """Another HTTP server on 8091 (the demo's default port); on a free port when 8091 is in use here already."""
    _Foreign.requests = []
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 8091), _Foreign)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Foreign.requests
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_with_another_server_on_its_port_the_demo_takes_a_free_one(
    demo_env: Path, foreign_server: tuple[int, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    port, requests = foreign_server
    assert demo.main(["--headless", "--port", str(port), "--out", str(demo_env)]) == 0
    said = capsys.readouterr().out
    took = int(said.split(f"port {port} was taken, so the demo's vomni-sim took port ")[1].split()[0])
    assert took != port and f"vomni-sim serving {IMAGE_MODEL} (simulated) at http://127.0.0.1:{took}" in said
    _check_html(demo_env)  # the quickstart ran against the demo's own simulator...
    assert requests == []  # ...and never asked the other server anything
    with socket.create_connection(("127.0.0.1", port)):
        pass  # and the other server is still there: the demo touched nothing it did not start
