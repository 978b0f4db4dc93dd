"""Can a real (non-simulated) launch run here? A `vllm` command, and an NVIDIA GPU (asked of ``nvidia-smi``)."""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

from vomni_nb.errors import NoGPUError, ServerStartError

if TYPE_CHECKING:
    from vomni_nb.server.handle import LaunchSpec

__all__ = ["list_gpus", "check_gpus", "parse_gpu_list", "preflight"]

_SIM_HINT = "Use --sim (sim=True) to run vomni-sim, the CPU simulator, instead."


def parse_gpu_list(text: str) -> list[str]:
    """``nvidia-smi -L`` lines (``GPU 0: NVIDIA H100 80GB HBM3 (UUID: ...)``) -> one name per GPU."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("GPU ")]


def list_gpus(nvidia_smi: str = "nvidia-smi", timeout: float = 15.0) -> list[str]:
    """The GPUs ``nvidia-smi -L`` lists; NoGPUError when it is missing, fails, or lists none."""
    exe = shutil.which(nvidia_smi)
    if exe is None:
        raise NoGPUError(f"No NVIDIA GPU: `{nvidia_smi}` was not found on PATH. {_SIM_HINT}")
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoGPUError(f"No usable NVIDIA GPU: `nvidia-smi -L` failed ({exc}). {_SIM_HINT}") from exc
    if done.returncode != 0:
        said = (done.stdout + done.stderr).strip().splitlines()
        first = said[0] if said else f"exit code {done.returncode}"
        raise NoGPUError(f"No usable NVIDIA GPU: `nvidia-smi -L` failed: {first}. {_SIM_HINT}")
    gpus = parse_gpu_list(done.stdout)
    if not gpus:
        raise NoGPUError(f"No NVIDIA GPU: `nvidia-smi -L` lists none. {_SIM_HINT}")
    return gpus


def check_gpus(requested: tuple[int, ...], nvidia_smi: str = "nvidia-smi") -> list[str]:
    """Check a GPU exists and that each requested index is one of them."""
    gpus = list_gpus(nvidia_smi)
    missing = [index for index in requested if index >= len(gpus)]
    if missing:
        raise NoGPUError(
            f"GPU index {', '.join(map(str, missing))} asked for, but this machine has {len(gpus)} GPU(s) "
            f"(0..{len(gpus) - 1}); pick from those with --gpus."
        )
    return gpus


def preflight(spec: LaunchSpec, vllm_executable: str, nvidia_smi: str = "nvidia-smi") -> str:
    """The `vllm` to run, checked with the GPUs before anything starts (the simulator needs neither)."""
    if spec.kind != "vllm":
        return vllm_executable
    vllm = shutil.which(vllm_executable)
    if vllm is None:
        raise ServerStartError(
            f"`{vllm_executable}` is not installed here: pip install vllm-omni, or use --sim",
            cause="the vllm command was not found on PATH",
            advice="pip install vllm vllm-omni on a GPU machine, or add --sim for the CPU simulator.",
        )
    check_gpus(spec.gpus, nvidia_smi)
    return vllm
