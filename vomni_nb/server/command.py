"""Pure building blocks of a launch: argument parsing, the command line, the environment."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from vomni_nb.errors import InvalidRequestError
from vomni_nb.server.handle import LaunchSpec

__all__ = ["parse_gpus", "parse_port", "check_extra_args", "build_command", "build_env", "log_file_stem", "key_fits"]


def parse_gpus(gpus: str | Sequence[int] | int | None) -> tuple[int, ...]:
    """``"0,1"`` / ``[0, 1]`` / ``0`` -> ``(0, 1)``; InvalidRequestError for anything else."""
    if gpus is None or gpus == "":
        return ()
    if isinstance(gpus, int):
        items: list[object] = [gpus]
    elif isinstance(gpus, str):
        items = [part.strip() for part in gpus.split(",")]
    else:
        items = list(gpus)
    try:
        indices = tuple(int(str(item)) for item in items)
    except ValueError as exc:
        raise InvalidRequestError(f"--gpus takes GPU indices like 0 or 0,1; got {gpus!r}") from exc
    if any(index < 0 for index in indices) or len(set(indices)) != len(indices):
        raise InvalidRequestError(f"--gpus takes distinct non-negative indices; got {gpus!r}")
    return indices


def parse_port(port: int | str | None) -> int | None:
    """None for "pick one" (None or "auto"), else the port number; InvalidRequestError otherwise."""
    if port is None or port == "auto":
        return None
    try:
        number = int(port)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"--port takes a number or 'auto'; got {port!r}") from exc
    if not 0 < number < 65536:
        raise InvalidRequestError(f"--port must be 1..65535; got {number}")
    return number


# Flags the manager sets itself: given again after `--` they would fight ours (or, for the key,
# put a secret on the command line where `ps` shows it).
_OWN_FLAGS = {"--port": "--port", "--host": "the manager (it binds 127.0.0.1)", "--api-key": "--api-key"}


def check_extra_args(extra: Sequence[str]) -> tuple[str, ...]:
    """The extra `vllm serve` arguments, refusing the ones the manager sets itself."""
    for arg in extra:
        flag = arg.split("=", 1)[0]
        if flag in _OWN_FLAGS:
            raise InvalidRequestError(
                f"{flag} after `--` is not allowed: it is set by {_OWN_FLAGS[flag]}"
                + (" (the key then goes through the environment, never the command line)" if flag == "--api-key" else "")
            )
    return tuple(str(arg) for arg in extra)


def build_command(spec: LaunchSpec, host: str, port: int, *, vllm: str, python: str = sys.executable) -> list[str]:
    """The argv of a launch (the API key is never here: it goes through the environment)."""
    if spec.kind == "sim":
        return [python, "-m", "vomni_nb.sim", spec.model, "--host", host, "--port", str(port), *spec.extra_args]
    return [vllm, "serve", spec.model, "--omni", "--host", host, "--port", str(port), *spec.extra_args]


def build_env(base: dict[str, str], spec: LaunchSpec, api_key: str | None) -> dict[str, str]:
    """The server's environment: no colour, unbuffered, chosen GPUs, and the key (not in argv, so not in ps)."""
    env = dict(base)
    env.update({"NO_COLOR": "1", "VLLM_LOGGING_COLOR": "0", "PYTHONUNBUFFERED": "1"})
    if spec.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, spec.gpus))
    # A key in the kernel's environment is the client's business; the server gets only the one asked for.
    env.pop("VLLM_API_KEY", None)
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def log_file_stem(model: str) -> str:
    """A file-name-safe form of a model id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[:80] or "server"


def key_fits(have: str | None, asked: str | None) -> bool:
    """Whether a server with key ``have`` serves a start that asked for ``asked`` (None, "auto" or a key)."""
    if asked is None:
        return have is None
    if asked == "auto":
        return have is not None
    return have == asked
