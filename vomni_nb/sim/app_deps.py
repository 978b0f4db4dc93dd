"""Small pieces routes share: the JSON content-type check and the request id."""

from __future__ import annotations

import uuid

import psutil

from fastapi import Request
from fastapi.exceptions import RequestValidationError

__all__ = ["require_json", "random_hex", "peak_memory_mb"]

UNSUPPORTED_MEDIA = "Unsupported Media Type: Only 'application/json' is allowed"


async def require_json(request: Request) -> None:
    """vLLM's ``validate_json_request``: anything but application/json is a 400 validation error."""
    media_type = request.headers.get("content-type", "").lower().split(";", maxsplit=1)[0].strip()
    if media_type != "application/json":
        raise RequestValidationError(errors=[UNSUPPORTED_MEDIA])


def random_hex(n: int = 16) -> str:
    return uuid.uuid4().hex[:n]


def peak_memory_mb() -> float:
    """The simulator's own resident memory in MiB: a real number where vLLM reports GPU peak memory."""
    return round(psutil.Process().memory_info().rss / 2**20, 1)
