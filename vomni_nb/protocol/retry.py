"""When and how long to wait before retrying: exponential backoff with full jitter, Retry-After, caps."""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time

__all__ = ["RetryPolicy", "parse_retry_after", "backoff_delay", "retry_delay", "RETRYABLE_STATUS"]

# 503 (overloaded / not ready) and 429 (rate limited) mean the server did no work: safe to resend.
RETRYABLE_STATUS = frozenset({429, 503})


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay: float = 0.5
    max_delay: float = 8.0  # cap of the backoff curve
    max_retry_after: float = 30.0  # a larger Retry-After is capped to this

    def should_retry_status(self, status_code: int, attempt: int) -> bool:
        return status_code in RETRYABLE_STATUS and attempt < self.max_retries

    def can_retry(self, attempt: int) -> bool:
        return attempt < self.max_retries


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)]."""
    ceiling = min(policy.max_delay, policy.base_delay * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0.0, ceiling)


def retry_delay(attempt: int, retry_after: float | None, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """The wait before retry number ``attempt + 1``: the server's Retry-After (capped) or backoff."""
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after)
    return backoff_delay(attempt, policy, rng)
