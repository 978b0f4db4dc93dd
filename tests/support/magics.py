"""Helpers for the magics' tests: what a simulator counted, and what a captured cell showed."""

from __future__ import annotations

import re
from typing import Any

import httpx

__all__ = ["generations", "aborted", "outputs_of", "last_output", "rendered"]


def _metric(url: str, name: str) -> int:
    text = httpx.get(url + "/metrics", timeout=5.0).text
    found = re.search(rf"^{re.escape(name)}\{{[^}}]*\}} (\d+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in {url}/metrics"
    return int(found.group(1))


def generations(sim: Any) -> int:
    """How many generation requests a vomni-sim has received (its /metrics counter)."""
    return _metric(sim.url, "vllm_omni:generation_requests_total")


def aborted(sim: Any) -> int:
    """How many requests a vomni-sim aborted because the client went away."""
    return _metric(sim.url, "vllm_omni:aborted_requests_total")


def outputs_of(captured: Any) -> list[Any]:
    """The non-empty outputs a ``capture_output()`` block recorded (a cleared wait line is empty)."""
    return [out for out in captured.outputs if any(value for value in out.data.values())]


def last_output(captured: Any) -> Any:
    found = outputs_of(captured)
    assert found, "the cell showed nothing"
    return found[-1]


def rendered(error: BaseException) -> str:
    """What IPython shows for an error raised by a magic (its short rendering)."""
    render = getattr(error, "_render_traceback_", None)
    assert render is not None, f"{type(error).__name__} would show a full traceback"
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(render()))
