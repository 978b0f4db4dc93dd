"""A server that accepts every connection and never answers: the worst a hung proxy or a stopped process can do.

``with SilentServer() as server: ... server.url`` listens on a free 127.0.0.1 port; a thread accepts each
connection, reads (and drops) whatever the client sends, and keeps it open until the block ends. Unlike a
port whose accept queue is full, the TCP connection succeeds, so only a read timeout can end a request.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

__all__ = ["SilentServer"]


class SilentServer:
    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                self._drain()
                continue
            except OSError:
                return
            connection.setblocking(False)
            self._connections.append(connection)
            self.accepted += 1

    def _drain(self) -> None:
        for connection in self._connections:
            try:
                while connection.recv(65536):
                    pass
            except (BlockingIOError, OSError):
                pass

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(5)
        for connection in self._connections:
            connection.close()
        self._listener.close()
