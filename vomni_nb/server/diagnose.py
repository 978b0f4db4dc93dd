"""Why did a server fail? Pure functions from its log text, exit code and health to a cause and advice.

The texts matched are the ones vLLM-Omni 0.30.0 prints (reference §6); each rule quotes the
telling line where that helps, so the user sees the server's own words next to our advice.
"""

from __future__ import annotations

import dataclasses
import re
import signal
from collections.abc import Callable

from vomni_nb import _advice

__all__ = ["Diagnosis", "diagnose", "strip_ansi", "tail_lines", "PHASES", "phase_of", "advance_phase"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit)): (.+)$")
_MAX_QUOTE = 220


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """One line each: what went wrong (``cause``) and what to do (``advice``); ``kind`` is a stable tag."""

    kind: str
    cause: str
    advice: str


def strip_ansi(text: str) -> str:
    """Remove colour and cursor escapes (vLLM colours its logs even when piped in some launch modes)."""
    return _ANSI.sub("", text).replace("\r\n", "\n")


def tail_lines(text: str, n: int = 20) -> str:
    """The last ``n`` non-blank lines of ``text``, ANSI stripped."""
    lines = [line for line in strip_ansi(text).splitlines() if line.strip()]
    return "\n".join(lines[-n:]) if n > 0 else ""


_VLLM_PREFIX = re.compile(r"^(?:\([\w-]+ pid=\d+\) )?(?:INFO|WARNING|ERROR|DEBUG|CRITICAL) \d\d-\d\d [\d:]+ \[[^\]]*\] ")


def _quote(line: str) -> str:
    line = _VLLM_PREFIX.sub("", line.strip())
    return line if len(line) <= _MAX_QUOTE else line[: _MAX_QUOTE - 1] + "…"


def _said(summary: str, line: str) -> str:
    """``summary: quote``, but the cause once: a quote that already says the summary starts at it."""
    quoted = _quote(line)
    at = quoted.lower().find(summary.lower())
    if at >= 0:
        return quoted[at:]
    return f"{summary}: {quoted}"


def _find(lines: list[str], *needles: str) -> str | None:
    """The first line containing any needle (case-sensitive: these are exact library texts)."""
    for line in lines:
        if any(needle in line for needle in needles):
            return line
    return None


def _last_exception(lines: list[str]) -> str | None:
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line.strip()):
            return line
    return None


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


_Rule = Callable[[list[str], "int | None", "int | None", str], "Diagnosis | None"]


def _bad_flag(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    error = next((ln for ln in lines if re.match(r"^[\w.\- ]+: error: ", ln)), None)
    if error is None and rc != 2:
        return None
    if error is None and not any(ln.startswith("usage:") for ln in lines):
        return None
    quoted = _quote(error) if error else "usage error (exit 2)"
    return Diagnosis(
        "bad-flag",
        f"vllm rejected a command-line flag: {quoted}",
        "fix the flags after `--` (`vllm serve --help=all` lists them; --stage-configs-path is now --deploy-config).",
    )


def _port_in_use(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    if _find(lines, "Address already in use", "[Errno 98]") is None:
        return None
    return Diagnosis(
        "port-in-use",
        "the port is already in use (another server or program holds it)",
        f"use --port auto, or stop the other server ({_advice.LIST_SERVERS} shows ours).",
    )


def _gated(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    line = _find(lines, "GatedRepoError:", "Cannot access gated repo", "is restricted and you are not in the authorized")
    if line is None:
        return None
    return Diagnosis(
        "gated-model",
        f"the model is gated on Hugging Face and this account has no access: {_quote(line)}",
        "accept the model's licence on huggingface.co, then set HF_TOKEN (or `huggingface-cli login`) and restart.",
    )


def _missing_model(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    line = _find(
        lines,
        "RepositoryNotFoundError:",
        "Repository Not Found",
        "is not a valid model identifier",
        "requires an explicit model",
        "is not a local folder and is not a valid model",
    )
    if line is None:
        return None
    advice = "check the model id (org/name) or local path; a private model also needs HF_TOKEN."
    if _find(lines, "vomni-sim: this is a SIMULATOR") is not None:
        # The simulator downloads nothing: it refuses ids it cannot place in a family.
        advice = ("vomni-sim knows models by id (Qwen-Image, Z-Image, Qwen-Omni, Qwen3-TTS, Wan2.x ...); for another "
                  f"id name its family after `--`: {_advice.sim_family()}")
    return Diagnosis("missing-model", f"the model was not found: {_quote(line)}", advice)


def _free_memory(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    line = _find(lines, "less than desired GPU memory utilization", "No available memory for the cache blocks")
    if line is None:
        return None
    return Diagnosis(
        "free-memory",
        f"not enough free GPU memory for the requested utilisation: {_quote(line)}",
        "free the GPU (nvidia-smi lists other processes) or lower it: "
        "-- --stage-overrides '{\"0\":{\"gpu_memory_utilization\":0.8}}'.",
    )


def _oom(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    line = _find(lines, "CUDA out of memory", "OutOfMemoryError:")
    if line is None:
        return None
    return Diagnosis(
        "oom",
        _said("CUDA out of memory", line),
        "use more or larger GPUs (--gpus 0,1), or save memory: -- --enable-cpu-offload / --vae-use-tiling "
        "/ a quantized model.",
    )


def _init_timeout(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    line = _find(lines, "Orchestrator did not become ready", "Orchestrator startup timed out")
    if line is None:
        return None
    return Diagnosis(
        "init-timeout",
        f"the engine stages did not start in time: {_quote(line)}",
        "raise the limits (-- --init-timeout 1800 --stage-init-timeout 900); slow Hugging Face downloads "
        "also cause this (pre-download with `huggingface-cli download`).",
    )


def _engine_dead(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    line = _find(lines, "EngineDeadError:", "Engine core initialization failed", "Orchestrator initialization failed",
                 "Orchestrator thread died")
    if line is None and health != 503:
        return None
    quoted = f": {_quote(line)}" if line else " (/health answers 503)"
    return Diagnosis(
        "engine-dead",
        f"the engine died{quoted}",
        f"look for the first error above this line in the log (often GPU memory), then {_advice.server_restart(name)}.",
    )


def _killed(lines: list[str], rc: int | None, health: int | None, name: str) -> Diagnosis | None:
    if rc is None or rc >= 0:
        return None
    name = _signal_name(rc)
    advice = (
        "the host may be out of RAM (check `dmesg` for the OOM killer); free memory and start again."
        if rc == -signal.SIGKILL
        else "something outside vomni_nb stopped it; start it again."
    )
    return Diagnosis("killed", f"the server was killed by {name}", advice)


# Most specific first: an OOM traceback often ends in a generic "Engine core initialization failed".
_RULES: tuple[_Rule, ...] = (
    _bad_flag,
    _port_in_use,
    _gated,
    _missing_model,
    _free_memory,
    _oom,
    _init_timeout,
    _engine_dead,
    _killed,
)


def diagnose(log_text: str, returncode: int | None = None, health: int | None = None, *,
             name: str = "NAME") -> Diagnosis:
    """Cause and advice for a server that exited with ``returncode`` or answers /health with ``health``.

    ``name``: what the manager calls the server, filled into advice such as ``%omni_server logs NAME``.
    """
    lines = [line.rstrip() for line in strip_ansi(log_text).splitlines()]
    for rule in _RULES:
        found = rule(lines, returncode, health, name)
        if found is not None:
            return found
    exception = _last_exception(lines)
    if exception is not None:
        cause = f"the server failed: {_quote(exception)}"
    elif returncode is not None:
        cause = f"the server exited with code {returncode}"
    else:
        cause = "the server is not healthy"
    return Diagnosis("unknown", cause, f"read the log tail below ({_advice.server_logs(name, 200)} shows more).")


# Start-up phases in the order the log reveals them, with the texts that announce each one.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("launching", ()),
    ("starting", ("vLLM server version", "Delegating entrypoint", "non-default args")),
    ("loading weights", ("Initializing with model", "snapshot", "Downloading", "Loading weights", "Loading model",
                         "weights loaded", "Loaded ")),
    ("initialising stages", ("[Stage-", "Stage initialized", "Orchestrator ready", "Initializing stage")),
    ("warming up", ("Warming up", "warm-up", "warmup", "Warmup")),
    ("starting HTTP server", ("Starting vLLM API server", "Available routes are", "Application startup complete")),
)
_PHASE_NAMES = tuple(name for name, _ in PHASES)


def phase_of(line: str) -> str | None:
    """The latest phase ``line`` announces, or None."""
    found = None
    for name, needles in PHASES:
        if any(needle in line for needle in needles):
            found = name
    return found


def advance_phase(current: str, text: str) -> str:
    """The phase after reading ``text``; phases only move forward."""
    rank = _PHASE_NAMES.index(current) if current in _PHASE_NAMES else 0
    for line in strip_ansi(text).splitlines():
        phase = phase_of(line)
        if phase is not None and _PHASE_NAMES.index(phase) > rank:
            rank = _PHASE_NAMES.index(phase)
    return _PHASE_NAMES[rank]
