"""What both clients share: target and key resolution, the steps a plan yields, and the retry loop.

A *plan* is a generator that yields steps: :class:`Send` (answered with a :class:`Reply` or a
:class:`Failure`), :class:`Sleep`, and :class:`Gather` (run other plans concurrently; answered with
their results). The sync and async clients differ only in how they perform a step
(``OmniClient._run`` / ``AsyncOmniClient._run``, both stepping with :class:`Stepper`), so every
capability, its retries and its error mapping behave the same in both.

Rules:

1. A plan does no I/O and reads no clock but ``ClientCore.clock``: tests drive plans directly,
   in milliseconds (``tests/support/plans.py``).
2. Only a request the server did no work for is resent: a failure before anything was sent, 503
   (unless it says the model cannot do this at all) and 429. Never a stream once it has begun.
3. An exception while a step is performed (Ctrl-C, task cancellation) is thrown into the plan at
   its ``yield``, so a plan can clean up (a video job is DELETEd) before it re-raises.
4. Every log line goes through :func:`vomni_nb.errors.redact` with the client's key, and every error
   a plan raises leaves through :func:`~vomni_nb.protocol.status.redact_error` (``Stepper``): what
   a server echoes (a key sent in a field) never reaches a message, ``.body`` or ``.partial``.
5. Only a 2xx answer is a result: a redirect is an error naming its target (never followed, so the
   request and its key go only where the user said).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar, Union, cast

from vomni_nb.errors import (
    APIConnectionError,
    APIStatusError,
    Interrupted,
    InvalidRequestError,
    NotFoundError,
    VomniError,
    redact,
)
from vomni_nb.protocol.body import ACCEPT_ENCODING
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.protocol.limits import DEFAULT_LIMITS, Limits
from vomni_nb.protocol.parse import parse_models
from vomni_nb.protocol.retry import RetryPolicy, backoff_delay, retry_delay
from vomni_nb.protocol.status import error_from_response, is_redirect, is_wrong_kind_of_server, redact_error

__all__ = ["ClientCore", "Send", "Sleep", "Gather", "Reply", "Failure", "Step", "Outcome", "Plan", "Stepper",
           "call_arguments", "resolve_target", "resolve_api_key", "normalize_base_url", "log"]

T = TypeVar("T")
log = logging.getLogger("vomni_nb.client")
_USER_AGENT = "vomni_nb-client"


@dataclasses.dataclass(frozen=True)
class Send:
    spec: RequestSpec


@dataclasses.dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclasses.dataclass(frozen=True)
class Gather:
    """Run ``plans`` concurrently, at most ``concurrency`` at a time; the outcome is their results, in order.

    ``settle``: a plan that raises an ``Exception`` has that exception as its outcome, in its place, and
    the others run on (a sweep is never all-or-nothing); Ctrl-C and cancellation still end them all.
    """

    plans: Sequence[Generator[Any, Any, Any]]
    concurrency: int
    settle: bool = False


@dataclasses.dataclass
class Reply:
    """An HTTP answer. ``content`` is the whole body, except for an open stream (``stream`` set)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    elapsed: float
    stream: Any = None  # the transport's open response, for streaming successes
    request_id: str | None = None  # the server's X-Request-Id, or the one we sent


@dataclasses.dataclass(frozen=True)
class Failure:
    """No HTTP answer. ``before_send``: nothing reached the server, so resending is safe."""

    error: APIConnectionError
    before_send: bool


Step = Union[Send, Sleep, Gather]
Outcome = Union[Reply, Failure, list[Any], None]
Plan = Generator[Step, Outcome, T]


def call_arguments(function_locals: Mapping[str, Any], *skip: str) -> dict[str, Any]:
    """A function's arguments by name, from its ``locals()`` taken before it binds anything else,
    less ``skip``: an explicit signature stays the contract, and the next layer gets every argument."""
    return {name: value for name, value in function_locals.items() if name not in skip}


class Stepper(Generic[T]):
    """Steps a plan for a client's send loop::

        for step in stepper:
            with stepper.performing():
                stepper.outcome = perform(step)   # or: await perform(step)
        return stepper.result()

    What performing a step raises (Ctrl-C, cancellation included) is thrown into the plan at its
    ``yield``; an error the plan raises ends the loop, with ``secrets`` redacted from it (rule 4).
    ``outcome``/``error`` may also be set directly.
    """

    def __init__(self, plan: Plan[T], secrets: Sequence[str | None] = ()) -> None:
        self._plan = plan
        self._secrets = tuple(secrets)
        self.outcome: Outcome = None
        self.error: BaseException | None = None
        self.value: T | None = None

    def __iter__(self) -> Iterator[Step]:
        return self

    def __next__(self) -> Step:
        outcome, error = self.outcome, self.error
        self.outcome, self.error = None, None
        try:
            return self._plan.throw(error) if error is not None else self._plan.send(outcome)
        except StopIteration as stop:
            self.value = stop.value
            raise StopIteration from None
        except (VomniError, Interrupted) as raised:
            redact_error(raised, self._secrets)
            raise

    def performing(self) -> Stepper[T]:
        """Catch what performing a step raises, to throw it into the plan at the next step."""
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> bool:
        # Any exception, Ctrl-C and cancellation included: the plan gets it and decides (and re-raises).
        if error is not None:
            self.error = error
        return True

    def result(self) -> T:
        """The plan's result, once the loop has ended."""
        return cast(T, self.value)


def normalize_base_url(url: str) -> str:
    """``127.0.0.1:8091/v1/`` -> ``http://127.0.0.1:8091``: the server root every path is joined to.

    An endpoint's whole URL (``.../v1/images/generations``, copied from a curl line) is cut back to
    the root too: every path the client sends starts at ``/v1``, so keeping it would double it.
    """
    url = url.strip().rstrip("/")
    if not url:
        raise InvalidRequestError("The server has no URL (not started yet?): start it, or pass base_url=....")
    url = url.split("?", 1)[0].split("#", 1)[0]
    scheme, separator, rest = url.rpartition("://")
    host, slash, path = rest.partition("/")
    segments = path.split("/") if slash else []
    if "v1" in segments:
        path = "/".join(segments[: segments.index("v1")])
        url = f"{scheme}{separator}{host}" + (f"/{path}" if path else "")
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url


def resolve_target(server: Any, base_url: str | None) -> tuple[str, str | None, str | None]:
    """(base URL, model, api key) from a URL string or a Server-like handle (``.url``, ``.model``, ``.api_key``)."""
    if server is not None and base_url is not None:
        raise InvalidRequestError("Give either a server (handle or URL) or base_url=..., not both.")
    target = server if server is not None else base_url
    if target is None:
        target = os.environ.get("VOMNI_BASE_URL")
    if target is None:
        raise InvalidRequestError("No server given: pass a URL like 'http://127.0.0.1:8091' or a Server handle.")
    model: Any = None
    key: Any = None
    if isinstance(target, str):
        url = target
    else:
        found = getattr(target, "url", None)
        if not isinstance(found, str):
            raise InvalidRequestError(f"{type(target).__name__} has no .url: pass a URL string or a Server handle.")
        url = found
        model, key = getattr(target, "model", None), getattr(target, "api_key", None)
    return normalize_base_url(url), model if isinstance(model, str) else None, key if isinstance(key, str) else None


def resolve_api_key(explicit: str | None, from_handle: str | None) -> str | None:
    """The argument, then the Server handle's key, then VOMNI_API_KEY, then VLLM_API_KEY."""
    for candidate in (explicit, from_handle, os.environ.get("VOMNI_API_KEY"), os.environ.get("VLLM_API_KEY")):
        if candidate:
            return candidate
    return None


class ClientCore:
    """Settings, what was learned about the server, and the shared request loop (as a plan) of both clients.

    Three model names, each for one purpose: ``request_model`` is sent in every request (None: let
    the server use its own, which every route accepts); ``recorded_model`` is written into results'
    provenance (given, a Server handle's, or learned); ``known_served_models`` is what ``/v1/models``
    said (None until asked), for 404 advice and for learning ``recorded_model``.
    """

    def __init__(
        self,
        server: Any = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.perf_counter,
        limits: Limits | None = None,
    ) -> None:
        self.base_url, handle_model, handle_key = resolve_target(server, base_url)
        # A handle's model id may differ from a --served-model-name, so only an explicit model is sent.
        self.request_model = model
        self.recorded_model: str | None = model or handle_model
        self.known_served_models: list[str] | None = None
        self.api_key = resolve_api_key(api_key, handle_key)
        self.policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self.rng = rng or random.Random()
        self.clock = clock
        self.limits = limits or DEFAULT_LIMITS

    def with_options(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        retry_policy: RetryPolicy | None = None,
        limits: Limits | None = None,
    ) -> ClientCore:
        """A copy with these settings changed (None: unchanged); what was learned stays unless the server changed."""
        new = copy.copy(self)
        if base_url is not None and normalize_base_url(base_url) != self.base_url:
            new.base_url = normalize_base_url(base_url)
            new.known_served_models = None
            new.recorded_model = new.request_model
        if api_key is not None:
            new.api_key = api_key
        if model is not None:
            new.request_model = new.recorded_model = model
        if retry_policy is not None:
            new.policy = retry_policy
        if limits is not None:
            new.limits = limits
        return new

    def headers(self) -> dict[str, str]:
        # Only the encodings protocol.body decodes within its limits (httpx would also offer br/zstd).
        headers = {"User-Agent": _USER_AGENT, "X-Request-Id": f"vomni-{os.urandom(8).hex()}",
                   "Accept-Encoding": ACCEPT_ENCODING}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def url_and_headers(self, spec: RequestSpec) -> tuple[str, dict[str, str]]:
        """Where to send ``spec`` and with which headers (a fresh request id each time)."""
        headers = self.headers()
        if spec.content_type:
            headers["Content-Type"] = spec.content_type
        return self.base_url + spec.path, headers

    def describe(self, cls_name: str) -> str:
        key = ", api_key='***'" if self.api_key else ""
        model = f", model={self.recorded_model!r}" if self.recorded_model else ""
        return f"{cls_name}(base_url={self.base_url!r}{model}{key})"

    def log(self, level: int, message: str, *args: Any) -> None:
        """Log ``message % args`` under ``vomni_nb.client``, with the key (and any bearer token) redacted."""
        if log.isEnabledFor(level):
            log.log(level, "%s", redact(message % args if args else message, self.api_key))

    def call(self, spec: RequestSpec, *, raise_for_status: bool = True) -> Plan[Reply]:
        """Send ``spec`` with safe retries; returns the Reply or raises our error.

        Retried: connection failures before anything was sent, 503 and 429 (the server did no work),
        with Retry-After (capped) or exponential backoff with full jitter. Never retried: other
        statuses, failures after the request went out, and anything once a stream has begun.
        """
        attempt = 0
        target = f"{spec.method} {self.base_url}{spec.path}"
        while True:
            self.log(logging.DEBUG, "send %s (attempt %d)", target, attempt + 1)
            outcome = yield Send(spec)
            if isinstance(outcome, Failure):
                if outcome.before_send and spec.retryable and self.policy.can_retry(attempt):
                    delay = backoff_delay(attempt, self.policy, self.rng)
                    self._log_retry(target, "connection failed", delay, attempt)
                    yield Sleep(delay)
                    attempt += 1
                    continue
                self._log_give_up(target, attempt, str(outcome.error))
                raise outcome.error
            assert isinstance(outcome, Reply)
            self.log(logging.DEBUG, "%s answered %d in %.3f s", target, outcome.status_code, outcome.elapsed)
            if is_redirect(outcome.status_code):
                error = self.status_error(outcome, spec)
                self._log_give_up(target, attempt, str(error))
                raise error
            if outcome.status_code < 400 or not raise_for_status:
                return outcome
            error = self.status_error(outcome, spec)
            if (spec.retryable and self.policy.should_retry_status(outcome.status_code, attempt)
                    and not is_wrong_kind_of_server(outcome.status_code, str(error))):
                delay = retry_delay(attempt, error.retry_after, self.policy, self.rng)
                self._log_retry(target, f"status {outcome.status_code}", delay, attempt)
                yield Sleep(delay)
                attempt += 1
                continue
            if isinstance(error, NotFoundError) and error.param == "model" and self.known_served_models is None:
                yield from self._fetch_served_models()
                error = self.status_error(outcome, spec)
            self._log_give_up(target, attempt, str(error))
            raise error

    def _log_retry(self, target: str, reason: str, delay: float, attempt: int) -> None:
        self.log(logging.INFO, "%s: %s; retry %d of %d in %.2f s", target, reason, attempt + 1,
                 self.policy.max_retries, delay)

    def _log_give_up(self, target: str, attempt: int, error: str) -> None:
        tries = f"after {attempt + 1} attempts" if attempt else "not retried"
        self.log(logging.INFO, "%s failed (%s): %s", target, tries, error)

    def status_error(self, reply: Reply, spec: RequestSpec) -> APIStatusError:
        return error_from_response(
            reply.status_code,
            reply.content,
            reply.headers,
            url=self.base_url + spec.path,
            path=spec.path,
            served_models=self.known_served_models,
            secrets=(self.api_key,),
        )

    def _fetch_served_models(self) -> Plan[None]:
        """Best effort: ask ``/v1/models`` (so a 404 can list them, and results can record the model)."""
        outcome = yield Send(RequestSpec("GET", "/v1/models", retryable=False))
        served: list[str] = []
        if isinstance(outcome, Reply) and outcome.status_code == 200:
            try:
                served = parse_models(outcome.content)
            except Exception:  # noqa: BLE001 - only an enrichment
                served = []
        self.learn_served_models(served)

    def learn_served_models(self, served: list[str]) -> None:
        """Remember what the server serves; a server of one model names the model results record."""
        self.known_served_models = list(served)
        if self.recorded_model is None and len(served) == 1:
            self.recorded_model = served[0]

    def model_to_send(self, model: str | None) -> str | None:
        """The model a request names: the call's own, else the client's (None: the server's default)."""
        return model if model is not None else self.request_model

    def ensure_recorded_model(self) -> Plan[None]:
        """Before a generation, when no model is known yet: ask the server once, so results record it.

        The model is not sent in requests (every route accepts its absence); it is only provenance.
        Whatever asked ``/v1/models`` first (``client.models()``, a 404) also fills it in.
        """
        if self.recorded_model is None and self.known_served_models is None:
            yield from self._fetch_served_models()
