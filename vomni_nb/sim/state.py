"""What a running vomni-sim remembers between requests (counters, health, the fault dice)."""

from __future__ import annotations

import dataclasses
import random
import time

from fastapi import FastAPI

__all__ = ["SimState", "state_of"]


@dataclasses.dataclass
class SimState:
    fault_seed: int = 0
    healthy: bool = True
    generation_requests: int = 0
    in_flight: int = 0
    aborted: int = 0
    started_at: float = dataclasses.field(default_factory=time.time)
    requests_by_route: dict[str, int] = dataclasses.field(default_factory=dict)
    rng: random.Random = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        # A private generator: the injected fault sequence repeats for the same --fault-seed.
        self.rng = random.Random(self.fault_seed)


def state_of(app: FastAPI) -> SimState:
    """The SimState of an app built by ``create_app`` (created on first use)."""
    state = getattr(app.state, "sim_state", None)
    if state is None:
        sim = getattr(app.state, "sim", None)
        state = SimState(fault_seed=sim.faults.fault_seed if sim is not None else 0)
        app.state.sim_state = state
    return state
