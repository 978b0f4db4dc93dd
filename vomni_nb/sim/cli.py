"""``vomni-sim MODEL [flags]``: start a simulated vLLM-Omni server the way ``vllm serve --omni`` starts.

Order as in the real launcher: bind the port (not listening yet), log, load the "engine",
print the route list, then let uvicorn listen on the pre-bound socket. Until then clients get
connection refused, never 503.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from vomni_nb.sim import lograte, netguard, startup, storage, vlog
from vomni_nb.sim.config import DEFAULT_MAX_IMAGE_PIXELS, Faults, SimConfig
from vomni_nb.sim.families import Family, close_ids, match_model
from vomni_nb.sim.limits import add_limit_flags, limits_from_args

__all__ = ["main", "build_parser", "config_from_args"]


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


MAX_REPLY_TOKENS = 1_000_000


def _reply_tokens(text: str) -> int:
    value = int(text)
    if not 1 <= value <= MAX_REPLY_TOKENS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_REPLY_TOKENS:,}, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vomni-sim",
        description="A CPU simulator of a vLLM-Omni 0.30.0 server (no model runs; outputs are drawn/synthesised).",
    )
    parser.add_argument("model", help="model id, e.g. Tongyi-MAI/Z-Image-Turbo; picks the family")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", action="append", default=None, help="repeatable; env VLLM_API_KEY")
    parser.add_argument("--max-generated-image-size", type=int, default=DEFAULT_MAX_IMAGE_PIXELS)
    parser.add_argument("--served-model-name", default=None)
    parser.add_argument("--family", choices=[f.value for f in Family], default=None)
    parser.add_argument("--omni", action="store_true", help="accepted and ignored, as vllm serve needs it")
    parser.add_argument("--disable-uvicorn-access-log", action="store_true")
    parser.add_argument("--enable-request-id-headers", action="store_true")
    sim = parser.add_argument_group("simulator knobs")
    sim.add_argument("--startup-delay", type=_non_negative, default=0.0, help="seconds of simulated loading")
    sim.add_argument("--latency", type=_non_negative, default=0.0, help="seconds added before each generation")
    sim.add_argument("--tokens-per-second", type=float, default=50.0, help="streamed text rate")
    sim.add_argument("--reply-tokens", type=_reply_tokens, default=None, metavar="N",
                     help="chat replies are N tokens long (seeded filler), for long streams")
    sim.add_argument("--speech-realtime-factor", type=_positive, default=None, metavar="F",
                     help="speech (streamed and whole files) is paced at F times real time; "
                          "default: streams at 8x, whole files as soon as they are made")
    sim.add_argument("--fail-at-start", choices=startup.FAIL_KINDS, default=None)
    sim.add_argument("--rate-503", type=_fraction, default=0.0)
    sim.add_argument("--rate-429", type=_fraction, default=0.0, help="fraction answered 429 (with Retry-After)")
    sim.add_argument("--retry-after", type=_non_negative, default=1.0, help="Retry-After of injected 503s and 429s")
    sim.add_argument("--rate-507", type=_fraction, default=0.0)
    sim.add_argument("--midstream-error-after", type=int, default=None, help="chunks before an in-band error")
    sim.add_argument("--crash-after", type=_positive_int, default=None, help="engine dies after N generations")
    sim.add_argument("--dead-engine-window", type=_non_negative, default=1.0,
                     help="seconds the process stays up after the engine died (health 503, requests 500)")
    sim.add_argument("--fault-seed", type=int, default=0)
    add_cors_flags(parser)
    add_limit_flags(parser)
    return parser


def _json_list(text: str) -> tuple[str, ...]:
    """vLLM reads --allowed-origins/-methods/-headers with json.loads: '["http://localhost:8888"]'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"must be a JSON list such as '[\"http://localhost:8888\"]': {exc}") from exc
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise argparse.ArgumentTypeError("must be a JSON list of strings")
    return tuple(value)


def add_cors_flags(parser: argparse.ArgumentParser) -> None:
    """vLLM's CORS flags, same names and JSON format; only the default differs (no origin instead of all)."""
    parser.add_argument("--allowed-origins", type=_json_list, default=(),
                        help="JSON list; vLLM's default is [\"*\"], vomni-sim's is [] (no web page may call it)")
    parser.add_argument("--allowed-methods", type=_json_list, default=("*",))
    parser.add_argument("--allowed-headers", type=_json_list, default=("*",))
    parser.add_argument("--allow-credentials", action="store_true")


def config_from_args(args: argparse.Namespace, family: Family) -> SimConfig:
    keys = tuple(args.api_key) if args.api_key else ()
    if not keys and os.environ.get("VLLM_API_KEY"):
        keys = (os.environ["VLLM_API_KEY"],)
    voices = os.environ.get("VOMNI_SIM_VOICES_DIR")
    optional = {"voices_dir": Path(voices)} if voices else {}
    return SimConfig(
        model=args.model,
        family=family,
        served_model_name=args.served_model_name or args.model,
        host=args.host,
        port=args.port,
        api_keys=keys,
        max_generated_image_size=args.max_generated_image_size,
        # Unset (or empty): a private directory made at start-up; see storage.py for why not /tmp/storage.
        storage_dir=Path(os.environ["VOMNI_SIM_STORAGE"]) if os.environ.get("VOMNI_SIM_STORAGE") else None,
        faults=Faults(
            latency=args.latency,
            tokens_per_second=args.tokens_per_second,
            speech_realtime_factor=args.speech_realtime_factor,
            reply_tokens=args.reply_tokens,
            rate_503=args.rate_503,
            retry_after=args.retry_after,
            rate_429=args.rate_429,
            rate_507=args.rate_507,
            midstream_error_after=args.midstream_error_after,
            crash_after=args.crash_after,
            dead_engine_window=args.dead_engine_window,
            fault_seed=args.fault_seed,
        ),
        enable_request_id_headers=args.enable_request_id_headers,
        allowed_origins=args.allowed_origins,
        allowed_methods=args.allowed_methods,
        allowed_headers=args.allowed_headers,
        allow_credentials=args.allow_credentials,
        limits=limits_from_args(args),
        **optional,  # type: ignore[arg-type]
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind without listening, as vLLM's ``setup_server`` does (connections are refused until listen)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR only: vLLM also sets SO_REUSEPORT, but then a second server on the same port
    # would start silently; we want the real "Address already in use" whenever the port is taken.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit TCP_NODELAY. asyncio sets it only for proto=IPPROTO_TCP sockets (ours is 0),
    # and without it uvicorn's separate header/body writes wait ~40 ms on the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args = build_parser().parse_args(argv)
    # SIGTERM while loading exits 0; uvicorn re-raises captured signals after its own shutdown,
    # which lands here too.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 0
    except startup.StartupFailure as failure:
        return failure.exit_code


def _run(args: argparse.Namespace) -> int:
    if args.fail_at_start == "bad-flag":
        startup.bad_flag()
        return 2
    vlog.warning(
        "vomni-sim: this is a SIMULATOR of vLLM-Omni 0.30.0 -- no model is loaded and every output is synthetic.",
        where="vomni_sim.py:1",
    )
    if args.fail_at_start == "port-in-use":
        startup.port_in_use()
        return 1
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            startup.port_in_use()
            return 1
        raise
    vlog.info(f"vLLM server version {startup.VLLM_VERSION}, serving model {args.model}", where="launcher.py:215")
    fail = args.fail_at_start
    close: tuple[str, ...] = ()
    if args.family:
        family = Family(args.family)
    elif (found := match_model(args.model)) is not None:
        family = found.family
        if found.pattern is not None:
            vlog.warning(
                f"vomni-sim: {args.model} is not one of the simulator's known ids; serving it as a {family.value} "
                f"model because it matches {found.pattern}. Check the spelling: a real server downloads exactly "
                "this id.",
                where="vomni_sim.py:1",
            )
    else:
        fail, family, close = "missing-model", Family.IMAGE, tuple(close_ids(args.model))
    startup.Phases(model=args.model, family=family, delay=args.startup_delay, fail=fail, close_ids=close).run()
    config = config_from_args(args, family)
    try:  # directories given by the user must be private and ours; say so now rather than on first use
        if config.storage_dir is not None:
            storage.ensure_private_dir(config.storage_dir)
        storage.ensure_private_dir(Path(config.voices_dir).expanduser())
    except OSError as exc:
        vlog.error(f"vomni-sim cannot use its storage: {exc}", where="vomni_sim.py:1")
        return 1
    return _serve(config, sock, access_log=not args.disable_uvicorn_access_log)


def _serve(config: SimConfig, sock: socket.socket, *, access_log: bool) -> int:
    import uvicorn

    from vomni_nb.sim.app import create_app

    app = create_app(config)
    shown_host = config.host or "0.0.0.0"
    diffusion = config.family in (Family.IMAGE, Family.VIDEO)
    mode = " (pure diffusion mode)" if diffusion else " 0"
    # Two different logger calls in api_server.py: L374 (pure diffusion) and L389 (LLM/omni).
    vlog.info(f"Starting vLLM API server{mode} on http://{shown_host}:{config.port}",
              where="api_server.py:374" if diffusion else "api_server.py:389")
    vlog.info("Available routes are:", where="launcher.py:46")
    for line in startup.route_lines(app.routes):
        vlog.info(line, where="launcher.py:54")
    connections = netguard.raise_fd_limit(config.limits.max_connections)
    uv_config = uvicorn.Config(
        app,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=3,
        lifespan="on",
        http=netguard.guarded_protocol(netguard.ConnectionGuard(config.limits, connections)),
    )
    # From here on a flood of identical lines is counted instead of written (start-up lines are above).
    limiter = lograte.RepeatLimiter(config.limits.log_repeat_limit)
    for name in ("uvicorn.error", "uvicorn.access", "asyncio"):
        logging.getLogger(name).addFilter(lograte.RepeatFilter(limiter))
    vlog.limit_repeats(limiter)
    server = uvicorn.Server(uv_config)
    asyncio.run(server.serve(sockets=[sock]))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
