"""Peak memory of this process while an attack runs: the client's RSS growth, asserted as a bound.

On Linux the kernel's own peak (``VmHWM``) is reset before the attack (``/proc/self/clear_refs``),
so the figure is exact; elsewhere a thread samples psutil's RSS every few milliseconds.
"""

from __future__ import annotations

import gc
import re
import threading
from pathlib import Path
from types import TracebackType

import psutil

__all__ = ["PeakRSS"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
MiB = 1 << 20


def _kernel_peak() -> int | None:
    try:
        found = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())
    except OSError:
        return None
    return int(found.group(1)) * 1024 if found else None


class PeakRSS:
    """``with PeakRSS() as peak: attack()`` then ``peak.growth_mib``: the most RSS rose above its start."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._sampled = 0
        self.baseline = 0
        self.peak = 0
        self._exact = False

    def __enter__(self) -> PeakRSS:
        gc.collect()
        try:
            _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS
            self._exact = _kernel_peak() is not None
        except OSError:
            self._exact = False
        self.baseline = self._process.memory_info().rss
        self._sampled = self.baseline
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._sampled = max(self._sampled, self._process.memory_info().rss)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        kernel = _kernel_peak() if self._exact else None
        self.peak = max(self._sampled, kernel or 0)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / MiB
