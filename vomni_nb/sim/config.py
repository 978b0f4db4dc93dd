"""Everything a running vomni-sim knows about itself; routers read it from ``request.app.state.sim``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vomni_nb.sim.families import Family
from vomni_nb.sim.limits import Limits

DEFAULT_MAX_IMAGE_PIXELS = 7680 * 4320


@dataclasses.dataclass
class Faults:
    """Fault injection knobs (simulator only)."""

    latency: float = 0.0  # seconds added before each generation
    tokens_per_second: float = 50.0  # streamed text rate
    reply_tokens: int | None = None  # chat replies padded (or cut) to this many tokens; None: their own length
    # Speech paced at this many times real time, streamed and whole; None: streams at 8x, whole files at once.
    speech_realtime_factor: float | None = None
    rate_503: float = 0.0  # fraction of generation requests answered 503 (with Retry-After)
    retry_after: float = 1.0  # value of the Retry-After header on injected 503s and 429s
    rate_429: float = 0.0  # fraction answered 429 (too many requests, with Retry-After), as a proxy would
    rate_507: float = 0.0  # fraction answered 507 (out of memory)
    midstream_error_after: int | None = None  # chunks sent before an in-band stream error
    crash_after: int | None = None  # exit the process after N generation requests
    dead_engine_window: float = 1.0  # seconds the process stays up (health 503) after the engine died
    fault_seed: int = 0  # makes the injected fault sequence repeatable


@dataclasses.dataclass
class SimConfig:
    model: str
    family: Family
    served_model_name: str
    host: str = "127.0.0.1"
    port: int = 8091
    api_keys: tuple[str, ...] = ()
    max_generated_image_size: int = DEFAULT_MAX_IMAGE_PIXELS
    # None: a private directory made at start-up (mode 0700) and removed at exit; VOMNI_SIM_STORAGE overrides.
    storage_dir: Path | None = None
    voices_dir: Path = Path.home() / ".cache" / "vomni-sim" / "speakers"
    faults: Faults = dataclasses.field(default_factory=Faults)
    enable_request_id_headers: bool = False  # echo X-Request-Id on responses, as vLLM's flag does
    # vLLM's CORS flags. vLLM allows every origin; vomni-sim allows none unless --allowed-origins says so.
    allowed_origins: tuple[str, ...] = ()
    allowed_methods: tuple[str, ...] = ("*",)
    allowed_headers: tuple[str, ...] = ("*",)
    allow_credentials: bool = False
    limits: Limits = dataclasses.field(default_factory=Limits)
