"""Small, fast looks at a server: its /health code, its served models, and its log file.

stdlib ``http.client`` on purpose: a start-up poll runs every 50 ms and must not pay for a
connection pool or an import of httpx in the watchdog. A probe may meet a server we do not control
(``attach URL``): its timeout bounds the whole exchange, not each read (a server trickling one byte
every 2 s would otherwise hold it for ever), and its answer is read up to :data:`MAX_PROBE_BYTES`.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.parse
from pathlib import Path

from vomni_nb.errors import ServerManagerError, redact
from vomni_nb.server.diagnose import strip_ansi, tail_lines

__all__ = ["health_code", "served_models", "probe_remote", "LogFollower", "read_log", "read_log_tail", "split_url",
           "MAX_PROBE_BYTES"]

MAX_PROBE_BYTES = 1 << 20  # a model list or a health answer is a few hundred bytes


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, base path) of an http(s) URL; the port defaults by scheme."""
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ServerManagerError(f"not an http(s) URL: {url!r}; give one like http://host:8091")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.scheme, parsed.hostname, port, parsed.path.rstrip("/")


def _cut(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    """The deadline passed: wake the blocked read (shutdown, unlike close, does) so the probe gives up."""
    expired.set()
    if conn.sock is not None:
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _request(url: str, path: str, *, timeout: float, api_key: str | None = None) -> tuple[int, bytes]:
    scheme, host, port, base = split_url(url)
    conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(host, port, timeout=timeout)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    expired = threading.Event()
    watchdog = threading.Timer(timeout, _cut, args=(conn, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("GET", base + path, headers=headers)
        response = conn.getresponse()
        body = response.read(MAX_PROBE_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(f"no whole answer within {timeout:g} s") from exc
        raise
    finally:
        watchdog.cancel()
        conn.close()
    if expired.is_set():  # the cut can also end a read early without an error: a short body, not an answer
        raise TimeoutError(f"no whole answer within {timeout:g} s")
    if len(body) > MAX_PROBE_BYTES:
        raise http.client.HTTPException(f"an answer larger than {MAX_PROBE_BYTES} bytes")
    return response.status, body


def health_code(url: str, timeout: float = 1.0) -> int | None:
    """The status of ``GET /health``, or None when nothing answers (refused, reset, timeout)."""
    try:
        return _request(url, "/health", timeout=timeout)[0]
    except (OSError, http.client.HTTPException):
        return None


def served_models(url: str, api_key: str | None = None, timeout: float = 5.0) -> list[str]:
    """Model ids from ``GET /v1/models``; ServerManagerError saying what to do when that fails."""
    try:
        status, body = _request(url, "/v1/models", timeout=timeout, api_key=api_key)
    except (OSError, http.client.HTTPException) as exc:
        raise ServerManagerError(f"{url}/v1/models did not answer ({exc}); is the server up?") from exc
    if status == 401:
        if api_key:
            raise ServerManagerError(f"{url} refused the API key given: use the key the server was started with.")
        raise ServerManagerError(f"{url} needs an API key: pass --api-key K (api_key= in Python), or set "
                                 "VOMNI_API_KEY (or VLLM_API_KEY).")
    if status != 200:
        # Redact the whole body before cutting it: a cut through the key would leave a piece of it.
        said = redact(body[:64_000].decode(errors="replace"), api_key)[:200]
        raise ServerManagerError(f"{url}/v1/models answered {status}: {said}")
    try:
        data = json.loads(body)["data"]
        return [str(item["id"]) for item in data]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ServerManagerError(f"{url}/v1/models did not return an OpenAI model list; is it a vLLM server?") from exc


def probe_remote(url: str, api_key: str | None) -> tuple[str, str, int, list[str]]:
    """(normalised URL, host, port, served model ids) of a healthy server to attach; ServerManagerError
    saying what is wrong otherwise. Without ``api_key`` the environment's key is tried, as OmniClient does."""
    scheme, host, port, base = split_url(url)
    url = f"{scheme}://{host}:{port}{base}"
    code = health_code(url, timeout=5.0)
    if code is None:
        raise ServerManagerError(f"nothing answers at {url}/health (no whole answer within 5 s); check the URL and "
                                 "that the server is up.")
    if code != 200:
        raise ServerManagerError(f"{url}/health answered {code}: the server is not healthy (still loading or dead).")
    models = served_models(url, api_key or os.environ.get("VOMNI_API_KEY") or os.environ.get("VLLM_API_KEY"))
    if not models:
        raise ServerManagerError(f"{url}/v1/models lists no model.")
    return url, host, port, models


class LogFollower:
    """Reads what a log file gained since the last call (the server appends while we watch)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def read_new(self) -> str:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return ""
        # Only whole lines: a phase text cut in half would be missed.
        end = data.rfind(b"\n") + 1
        self._offset += end
        return strip_ansi(data[:end].decode(errors="replace"))


def _read_end(path: Path | str | None, max_bytes: int) -> str:
    """The last ``max_bytes`` of a log file, decoded; "" when there is no file to read."""
    if path is None:
        return ""
    try:
        # Never through a symlink: a log path may come from the registry file.
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - max_bytes))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def read_log_tail(path: Path | str | None, n: int = 40, *, max_bytes: int = 1 << 20) -> str:
    """The last ``n`` non-blank lines of a log file (reads at most ``max_bytes`` from its end)."""
    return tail_lines(_read_end(path, max_bytes), n)


def read_log(path: Path | str | None, *, max_bytes: int = 4 << 20) -> str:
    """The whole log (up to its last ``max_bytes``), ANSI stripped, for diagnosis."""
    return strip_ansi(_read_end(path, max_bytes))
