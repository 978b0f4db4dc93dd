"""The start-up of a vLLM-Omni server as its log shows it (reference §6), and its failures.

Each phase logs the real server's lines; ``--startup-delay`` is spread over the phases so a
watcher sees loading, then ready. ``--fail-at-start`` prints what the real failure prints.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable

from vomni_nb.sim import vlog
from vomni_nb.sim.families import Family

__all__ = ["FAIL_KINDS", "StartupFailure", "Phases", "STAGES", "print_traceback", "port_in_use", "route_lines"]

FAIL_KINDS = ("oom", "free-memory", "missing-model", "port-in-use", "init-timeout", "bad-flag")
VLLM_VERSION = "0.30.0"
STAGES = {Family.IMAGE: 1, Family.OMNI: 3, Family.TTS: 2, Family.VIDEO: 1}


class StartupFailure(Exception):
    """Start-up stops here; the traceback text has been printed; exit with ``exit_code``."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def print_traceback(frames: Iterable[tuple[str, int, str, str]], final: str) -> None:
    """A Python traceback in the usual layout (file, line, function, source line), then ``final``."""
    lines = ["Traceback (most recent call last):"]
    for path, line, func, source in frames:
        lines.append(f'  File "{path}", line {line}, in {func}')
        lines.append(f"    {source}")
    lines.append(final)
    vlog.raw("\n".join(lines), stderr=True)


_SITE = "/usr/local/lib/python3.12/dist-packages"


def port_in_use() -> None:
    """What vLLM prints when ``setup_server`` cannot bind (before any model loading)."""
    print_traceback(
        [
            (f"{_SITE}/vllm_omni/entrypoints/cli/serve.py", 212, "cmd", "uvloop.run(omni_run_server(args))"),
            (f"{_SITE}/vllm/entrypoints/launchers/launcher.py", 231, "setup_server",
             "sock = create_server_socket(sock_addr)"),
            (f"{_SITE}/vllm/entrypoints/launchers/launcher.py", 197, "create_server_socket", "sock.bind(addr)"),
        ],
        "OSError: [Errno 98] Address already in use",
    )


def missing_model(model: str, close: tuple[str, ...] = ()) -> None:
    """The hub's "Repository Not Found" traceback; ``close`` names the known ids a typo was probably meant as."""
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    vlog.error(f"Failed to download model {model}", where="omni_snapshot.py:88")
    print_traceback(
        [
            (f"{_SITE}/huggingface_hub/utils/_http.py", 409, "hf_raise_for_status", "response.raise_for_status()"),
            (f"{_SITE}/vllm_omni/entrypoints/utils.py", 141, "omni_snapshot_download",
             "return snapshot_download(model, allow_patterns=['*'])"),
        ],
        "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. (Request ID: Root=1-vomni-sim)\n\n"
        f"Repository Not Found for url: https://huggingface.co/api/models/{model}/revision/main.\n"
        "Please make sure you specified the correct `repo_id` and `repo_type`.\n"
        "If you are trying to access a private or gated repo, make sure you are authenticated. "
        "For more details, see https://huggingface.co/docs/huggingface_hub/authentication\n"
        "Invalid username or password.\n"
        f"(vomni-sim: this model id is unknown to the simulator.{hint} Known ids match exactly, as the hub spells "
        "them; pass --family image|omni|tts|video to serve another id)",
    )


def cuda_oom() -> None:
    vlog.error("[Stage-0] Failed to load model weights", where="stage_worker.py:318", prefix="Stage-0")
    print_traceback(
        [
            (f"{_SITE}/vllm_omni/diffusion/worker/gpu_worker.py", 152, "load_model",
             "self.pipeline = self.pipeline.to(self.device)"),
            (f"{_SITE}/torch/nn/modules/module.py", 1343, "convert", "return t.to(device, dtype)"),
        ],
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "79.19 GiB of which 1.06 GiB is free. Including non-PyTorch memory, this process has 78.11 GiB memory in "
        "use. Of the allocated memory 76.52 GiB is allocated by PyTorch, and 1.02 GiB is reserved by PyTorch but "
        "unallocated. (simulated by vomni-sim --fail-at-start oom)",
    )


def free_memory() -> None:
    print_traceback(
        [
            (f"{_SITE}/vllm/v1/worker/gpu_worker.py", 239, "init_device",
             "raise ValueError("),
        ],
        "ValueError: Free memory on device cuda:0 (10.52/79.19 GiB) on startup is less than desired GPU memory "
        "utilization (0.9, 71.27 GiB). Decrease GPU memory utilization or reduce GPU memory used by other "
        "processes. (simulated by vomni-sim --fail-at-start free-memory)",
    )
    print_traceback(
        [(f"{_SITE}/vllm/v1/engine/core_client.py", 712, "wait_for_engine_startup",
          "raise RuntimeError(")],
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
    )


def init_timeout(timeout_s: int = 600) -> None:
    vlog.warning(
        f"[OmniEngine] Orchestrator startup timed out after {timeout_s}s. Multi-stage deployments that "
        "initialize stages sequentially on one device or load checkpoints from slow storage may need larger "
        "--init-timeout and --stage-init-timeout values.",
        where="omni_engine_base.py:520",
    )
    print_traceback(
        [(f"{_SITE}/vllm_omni/engine/omni_engine_base.py", 528, "_wait_for_orchestrator_init",
          'raise TimeoutError(f"Orchestrator did not become ready within {startup_timeout}s")')],
        f"TimeoutError: Orchestrator did not become ready within {timeout_s}s",
    )


def bad_flag() -> None:
    vlog.raw("usage: vllm serve [model_tag] [options]", stderr=True)
    vlog.raw("vllm serve: error: unrecognized arguments: --stage-configs-path "
             "(simulated by vomni-sim --fail-at-start bad-flag)", stderr=True)


def _flatten(routes: Iterable[object]) -> list[object]:
    # FastAPI >= 0.16x keeps an included router as one lazy entry; its routes sit behind it.
    flat: list[object] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat.extend(_flatten(inner.routes) if inner is not None else [route])
    return flat


def route_lines(routes: Iterable[object]) -> list[str]:
    """``Route: <path>, Methods: <m>`` for HTTP routes, ``Route: <path>, Endpoint: <f>`` for WebSockets."""
    http: list[str] = []
    ws: list[str] = []
    for route in _flatten(routes):
        path = getattr(route, "path", None)
        methods = getattr(route, "methods", None)
        if path is None:
            continue
        if methods:
            http.append(f"Route: {path}, Methods: {', '.join(sorted(methods))}")
        else:
            endpoint = getattr(route, "endpoint", None)
            ws.append(f"Route: {path}, Endpoint: {getattr(endpoint, '__name__', 'endpoint')}")
    return http + ws


@dataclasses.dataclass
class Phases:
    """Logs the engine start-up phases, sleeping a share of ``delay`` in each."""

    model: str
    family: Family
    delay: float
    fail: str | None = None
    sleep: Callable[[float], None] = time.sleep
    close_ids: tuple[str, ...] = ()  # known ids a missing model was probably meant as

    def run(self) -> None:
        started = time.monotonic()
        stages = STAGES[self.family]
        vlog.info(f"[OmniEngine] Initializing with model {self.model}", where="omni_engine_base.py:163")
        if self.fail == "missing-model":
            missing_model(self.model, self.close_ids)
            raise StartupFailure(1)
        for stage in range(stages):
            self.sleep(self.delay * 0.6 / stages)
            if self.fail == "oom" and stage == stages - 1:
                cuda_oom()
                raise StartupFailure(1)
            if self.fail == "free-memory" and stage == 0:
                free_memory()
                raise StartupFailure(1)
            vlog.info(f"[Stage-{stage}] Stage initialized (simulated, no weights loaded)", where="stage_init.py:402")
        if self.fail == "init-timeout":
            init_timeout()
            raise StartupFailure(1)
        vlog.info(f"[OmniEngine] Orchestrator ready with {stages} stages", where="omni_engine_base.py:344")
        elapsed = time.monotonic() - started
        vlog.info(f"[AsyncOmni] AsyncOmniEngine initialized in {elapsed:.2f} seconds", where="omni_base.py:227")
        self.sleep(self.delay * 0.2)
        if self.family in (Family.IMAGE, Family.VIDEO):
            vlog.info(f"Pure diffusion API server initialized for model: {self.model}", where="api_server.py:864")
        else:
            vlog.info("Supported tasks: {'generate'}", where="api_server.py:880")
        if self.family is Family.TTS:
            vlog.info("Warming up speech generation (simulated)...", where="serving_speech.py:520")
            self.sleep(self.delay * 0.2)
            vlog.info("Speech warm-up done", where="serving_speech.py:548")
        else:
            self.sleep(self.delay * 0.2)

