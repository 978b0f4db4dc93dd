"""wait_ready: only our own server's answer on /health counts as ready."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vomni_nb.errors import ServerStartTimeout
from vomni_nb.server.handle import Run, Server
from vomni_nb.server.launch import group_listens
from vomni_nb.server.readiness import wait_ready


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def foreign_health() -> Iterator[int]:
    """Another program on 127.0.0.1 that answers /health with 200 (SO_REUSEPORT, as vLLM binds)."""
    class Server(http.server.ThreadingHTTPServer):
        def server_bind(self) -> None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    server = Server(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _quiet_process(tmp_path: Path, port: int) -> tuple[subprocess.Popen[bytes], Server]:
    """A 'server' that binds nothing and never listens, as our handle would see it."""
    log = tmp_path / "server.log"
    log.write_text("INFO starting\n")
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    run = Run(pid=process.pid, pgid=process.pid, pid_started=time.time(), port=port, log_path=log,
              started_at=time.time(), registry_id="test", process=process)
    server = Server(manager=None, name="m", model="org/model", kind="sim", host="127.0.0.1",  # type: ignore[arg-type]
                    owned=True, run=run, url=f"http://127.0.0.1:{port}")
    return process, server


def test_another_programs_health_answer_is_not_our_server_ready(tmp_path: Path, foreign_health: int) -> None:
    process, server = _quiet_process(tmp_path, foreign_health)
    try:
        assert group_listens(process.pid, foreign_health) is False
        with pytest.raises(ServerStartTimeout) as caught:
            wait_ready(server, time.monotonic(), 0.5, None)
        assert f"another program answers /health on port {foreign_health}" in str(caught.value)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_our_own_listener_counts_as_ready(tmp_path: Path) -> None:
    code = ("import http.server,sys\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_GET(self):\n"
            "        self.send_response(200); self.send_header('Content-Length','0'); self.end_headers()\n"
            "H.log_message=lambda *a: None\n"
            "s=http.server.HTTPServer(('127.0.0.1',0),H); print(s.server_address[1],flush=True); s.serve_forever()\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        log = tmp_path / "server.log"
        log.write_text("")
        run = Run(pid=process.pid, pgid=process.pid, pid_started=time.time(), port=port, log_path=log,
                  started_at=time.time(), registry_id="test", process=process)
        server = Server(manager=None, name="m", model="org/model", kind="sim", host="127.0.0.1",  # type: ignore[arg-type]
                        owned=True, run=run, url=f"http://127.0.0.1:{port}")
        assert group_listens(process.pid, port) is True
        wait_ready(server, time.monotonic(), 10.0, None)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
