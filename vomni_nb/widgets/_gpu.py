"""GPU memory for the server panel, as ``nvidia-smi`` reports it: per GPU, and per process.

A server's GPU memory is the sum over its process tree (vLLM's engine cores are child processes of
``vllm serve``). Where ``nvidia-smi`` is missing or fails, there is no GPU column: the panel never guesses.
Parsing is pure; ``read_gpu_memory`` runs the two queries (a few tens of milliseconds each).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Mapping

__all__ = ["GpuMemory", "GpuSnapshot", "parse_gpu_csv", "parse_apps_csv", "read_gpu_memory", "process_tree",
           "server_memory_mib"]

GPU_QUERY = "--query-gpu=index,name,memory.used,memory.total"
APPS_QUERY = "--query-compute-apps=pid,used_memory"
CSV = "--format=csv,noheader,nounits"


@dataclasses.dataclass(frozen=True)
class GpuMemory:
    """One GPU: its index, name and memory in MiB."""

    index: int
    name: str
    used_mib: float
    total_mib: float


@dataclasses.dataclass(frozen=True)
class GpuSnapshot:
    """Every GPU, and the memory each process that holds some uses (pid -> MiB)."""

    gpus: tuple[GpuMemory, ...]
    by_pid: Mapping[int, float]


def _number(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def parse_gpu_csv(text: str) -> tuple[GpuMemory, ...]:
    """``0, NVIDIA H100 80GB HBM3, 30512, 81559`` lines -> GPUs (lines it cannot read are skipped)."""
    gpus = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        used, total = _number(parts[2]), _number(parts[3])
        if used is not None and total is not None:
            gpus.append(GpuMemory(int(parts[0]), parts[1], used, total))
    return tuple(gpus)


def parse_apps_csv(text: str) -> dict[int, float]:
    """``4242, 30208`` lines -> {pid: MiB}; a process on several GPUs is summed."""
    found: dict[int, float] = {}
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        used = _number(parts[1])
        if used is not None:
            found[int(parts[0])] = found.get(int(parts[0]), 0.0) + used
    return found


def _query(exe: str, *args: str, timeout: float) -> str | None:
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def read_gpu_memory(nvidia_smi: str = "nvidia-smi", timeout: float = 5.0) -> GpuSnapshot | None:
    """What ``nvidia-smi`` reports now; None where it is missing, fails or lists no GPU."""
    exe = shutil.which(nvidia_smi)
    if exe is None:
        return None
    gpus_text = _query(exe, GPU_QUERY, CSV, timeout=timeout)
    gpus = parse_gpu_csv(gpus_text or "")
    if not gpus:
        return None
    apps_text = _query(exe, APPS_QUERY, CSV, timeout=timeout)
    return GpuSnapshot(gpus, parse_apps_csv(apps_text or ""))


def process_tree(pid: int) -> set[int]:
    """``pid`` and its descendants (just ``pid`` when it is gone or not ours to see)."""
    import psutil

    try:
        return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
    except psutil.Error:
        return {pid}


def server_memory_mib(snapshot: GpuSnapshot | None, pid: int | None) -> float | None:
    """The GPU memory of a server's process tree; None without nvidia-smi, a pid, or any memory held."""
    if snapshot is None or pid is None:
        return None
    used = [snapshot.by_pid[p] for p in process_tree(pid) if p in snapshot.by_pid]
    return sum(used) if used else None
