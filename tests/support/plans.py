"""Drive a request plan with no sockets, in milliseconds (the idea of h11's ``tests/helpers.py``).

A plan (``vomni_nb._plans``) yields Send, Sleep and Gather steps. :class:`PlanDriver` answers each
Send from a test's ``answer`` function, records what was sent and slept, advances a fake clock by
each Sleep, runs a Gather's plans one after another, and can raise an interrupt at a chosen sleep,
exactly where a client's send loop would see Ctrl-C.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from collections.abc import Callable
from typing import Any

from vomni_nb._core import ClientCore, Failure, Gather, Plan, Reply, Send, Stepper
from vomni_nb.protocol.build import RequestSpec

__all__ = ["FakeClock", "PlanDriver", "plan_core", "reply", "tiny_png"]


class FakeClock:
    """``ClientCore.clock`` for tests: time moves only when a plan sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plan_core(**kwargs: Any) -> ClientCore:
    """A core for plan tests: a fixed URL and model (so no /v1/models look-up), a seeded rng, a fake clock."""
    kwargs.setdefault("model", "test/model")
    kwargs.setdefault("rng", random.Random(0))
    kwargs.setdefault("clock", FakeClock())
    return ClientCore("http://plan.test", **kwargs)


def reply(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> Reply:
    """A Reply as a client would hand it to the plan (JSON for dicts and lists)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status, {key.lower(): value for key, value in (headers or {}).items()}, content, 0.01,
                 request_id="vomni-test")


def tiny_png(width: int = 4, height: int = 2) -> bytes:
    """A valid PNG built by hand (the plans read only its header; Pillow is not needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x80" * 3 * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class PlanDriver:
    """Runs a plan: ``answer(spec)`` gives each Send's Reply or Failure; Sleeps are recorded, not slept.

    ``interrupt_at_sleep=N`` raises ``interrupt`` (KeyboardInterrupt) at the N-th sleep, into the plan.
    ``sent`` and ``slept`` stay readable when the plan raises.
    """

    def __init__(self, answer: Callable[[RequestSpec], Reply | Failure], *, clock: FakeClock | None = None,
                 interrupt_at_sleep: int | None = None, interrupt: type[BaseException] = KeyboardInterrupt) -> None:
        self.answer = answer
        self.clock = clock
        self.interrupt_at_sleep = interrupt_at_sleep
        self.interrupt = interrupt
        self.sent: list[RequestSpec] = []
        self.slept: list[float] = []

    @property
    def requests(self) -> list[str]:
        """What was sent, as ``"METHOD /path"`` lines."""
        return [f"{spec.method} {spec.path}" for spec in self.sent]

    def _settled(self, plan: Plan[Any]) -> Any:
        """A plan of a settled Gather: its own failure is its outcome, as a client's gather makes it."""
        try:
            return self.run(plan)
        except Exception as exc:  # noqa: BLE001 - kept in its place
            return exc

    def run(self, plan: Plan[Any]) -> Any:
        stepper = Stepper(plan)
        for step in stepper:
            if isinstance(step, Send):
                self.sent.append(step.spec)
                stepper.outcome = self.answer(step.spec)
                continue
            if isinstance(step, Gather):
                try:
                    stepper.outcome = [self._settled(each) if step.settle else self.run(each) for each in step.plans]
                except BaseException as exc:  # noqa: BLE001 - thrown into the plan, as a client does
                    stepper.error = exc
                continue
            self.slept.append(step.seconds)
            if self.clock is not None:
                self.clock.now += step.seconds
            if len(self.slept) == self.interrupt_at_sleep:
                stepper.error = self.interrupt()
        return stepper.value
