"""How fast the server manager notices a server is ready, or has failed, and what it adds to a bare start.

The stand-in ``vllm`` (tests/support/stand_in, stdlib only, so its own start is a few tens of ms) logs the
moment it calls listen(). Ready latency: from that moment (``/health`` can answer 200) to ``start()``
returning. Overhead: ``manager.start()`` end to end against a bare ``Popen`` of the same command polled
every 10 ms until ``/health`` is 200, interleaved. Failure latency: the stand-in exits right after its last
log line (the file's mtime); ``start()`` raises with a diagnosis. Targets: ready within 0.2 s, failures
within 2 s.

    .venv/bin/python benchmarks/ready_latency.py [--quick]
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import _harness as harness
from _harness import REPO, Row

MODEL = "Qwen/Qwen-Image"
FAILURES = ("oom", "missing-model", "port-in-use", "bad-flag", "engine-death")


def _bare_start(folder: Path, index: int) -> float:
    """Popen the stand-in and poll /health every 10 ms: what any hand-written start loop can do at best."""
    port = harness.free_port()
    started = time.perf_counter()
    with open(folder / f"bare-{index}.log", "wb") as log:
        process = subprocess.Popen(["vllm", "serve", MODEL, "--omni", "--host", "127.0.0.1", "--port", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        harness.wait_healthy(f"http://127.0.0.1:{port}", process, timeout=60, poll=0.01)
        return time.perf_counter() - started
    finally:
        os.killpg(process.pid, 15)
        process.wait(10)


def run(quick: bool = False) -> list[Row]:
    from vomni_nb.errors import ServerStartError
    from vomni_nb.server import ServerManager

    runs = 4 if quick else 15
    saved = {name: os.environ.get(name) for name in ("PATH", "STANDIN_DELAY", "STANDIN_FAIL")}
    os.environ["PATH"] = f"{REPO / 'tests' / 'support' / 'stand_in'}{os.pathsep}{os.environ['PATH']}"
    ready: list[float] = []
    managed: list[float] = []
    bare: list[float] = []
    failures: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            manager = ServerManager(registry_dir=Path(tmp), register_atexit=False)
            for index in range(runs):
                # Vary the load time so the listen moment falls anywhere inside the manager's poll period.
                os.environ["STANDIN_DELAY"] = f"{0.1 + (index * 0.0137) % 0.1:.4f}"
                bare.append(_bare_start(Path(tmp), index))
                started = time.perf_counter()
                server = manager.start(MODEL, port="auto")
                noticed = time.time()
                managed.append(time.perf_counter() - started)
                listening = float(re.findall(r"listening since ([\d.]+)", server.logs(200))[-1])
                ready.append(noticed - listening)
                manager.stop(server)
            os.environ["STANDIN_DELAY"] = "0.1"
            for kind in FAILURES[: 2 if quick else None]:
                os.environ["STANDIN_FAIL"] = kind
                try:
                    manager.start(MODEL, port="auto")
                except ServerStartError as exc:
                    failures.append(time.time() - os.path.getmtime(exc.log_path or ""))
                else:
                    raise RuntimeError(f"{kind}: start did not fail")
                finally:
                    os.environ.pop("STANDIN_FAIL")
            manager.shutdown()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return [
        harness.summary("manager: ready noticed", "listen() -> start() returns", ready, "ms", scale=1000,
                        note="target < 200 ms"),
        harness.summary("manager: failure noticed", "last log line -> ServerStartError", failures, "ms",
                        scale=1000, note=f"{len(failures)} kinds; target < 2 s"),
        harness.summary("manager: start, stand-in vllm", "bare Popen + /health poll every 10 ms", bare, "ms",
                        scale=1000, baseline=True),
        harness.summary("manager: start, stand-in vllm", "ServerManager.start()", managed, "ms", scale=1000,
                        note="port check, registry, log, diagnosis"),
    ]


if __name__ == "__main__":
    harness.main(run)
