"""What both clients share: target and key resolution, the steps a plan yields, and the retry loop.

A *plan* is a generator that yields :class:`Send` and :class:`Sleep` steps and receives a
:class:`Reply` (or a :class:`Failure`) for each Send. The sync and async clients differ only in the
loop that performs the steps (:meth:`OmniClient._run` / :meth:`AsyncOmniClient._run`), so every
capability, its retries and its error mapping behave the same in both.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Generator, Mapping
from typing import Any, TypeVar, Union

from vomni_nb.errors import APIConnectionError, APIStatusError, InvalidRequestError, NotFoundError
from vomni_nb.protocol.build import RequestSpec
from vomni_nb.protocol.parse import parse_models
from vomni_nb.protocol.retry import RetryPolicy, backoff_delay, retry_delay
from vomni_nb.protocol.status import error_from_response, is_wrong_kind_of_server

__all__ = ["ClientCore", "Send", "Sleep", "Reply", "Failure", "Plan", "resolve_target", "resolve_api_key"]

T = TypeVar("T")
_USER_AGENT = "vomni_nb-client"


@dataclasses.dataclass(frozen=True)
class Send:
    spec: RequestSpec


@dataclasses.dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclasses.dataclass
class Reply:
    """An HTTP answer. ``content`` is the whole body, except for an open stream (``stream`` set)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes
    elapsed: float
    stream: Any = None  # the transport's open response, for streaming successes


@dataclasses.dataclass(frozen=True)
class Failure:
    """No HTTP answer. ``before_send``: nothing reached the server, so resending is safe."""

    error: APIConnectionError
    before_send: bool


Step = Union[Send, Sleep]
Outcome = Union[Reply, Failure, None]
Plan = Generator[Step, Outcome, T]


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
    url = url.strip().rstrip("/")
    if not url:
        raise InvalidRequestError("The server has no URL (not started yet?): start it, or pass base_url=....")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    if not url.startswith(("http://", "https://")):
        url = "http://" + url
    return url, model if isinstance(model, str) else None, key if isinstance(key, str) else None


def resolve_api_key(explicit: str | None, from_handle: str | None) -> str | None:
    """The argument, then the Server handle's key, then VOMNI_API_KEY, then VLLM_API_KEY."""
    for candidate in (explicit, from_handle, os.environ.get("VOMNI_API_KEY"), os.environ.get("VLLM_API_KEY")):
        if candidate:
            return candidate
    return None


class ClientCore:
    """Configuration and the shared request loop (as a plan) of both clients."""

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
    ) -> None:
        self.base_url, handle_model, handle_key = resolve_target(server, base_url)
        # Only an explicit model is sent with requests (every route accepts none, and a handle's model id
        # may differ from a --served-model-name); the handle's model is provenance only.
        self.model = model
        self.api_key = resolve_api_key(api_key, handle_key)
        self.policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self.rng = rng or random.Random()
        self.served_models: list[str] | None = None
        self.provenance_model: str | None = model or handle_model

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": _USER_AGENT, "X-Request-Id": f"vomni-{os.urandom(8).hex()}"}
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
        model = f", model={self.provenance_model!r}" if self.provenance_model else ""
        return f"{cls_name}(base_url={self.base_url!r}{model}{key})"

    def call(self, spec: RequestSpec, *, raise_for_status: bool = True) -> Plan[Reply]:
        """Send ``spec`` with safe retries; returns the Reply or raises our error.

        Retried: connection failures before anything was sent, 503 and 429 (the server did no work),
        with Retry-After (capped) or exponential backoff with full jitter. Never retried: other
        statuses, failures after the request went out, and anything once a stream has begun.
        """
        attempt = 0
        while True:
            outcome = yield Send(spec)
            if isinstance(outcome, Failure):
                if outcome.before_send and spec.retryable and self.policy.can_retry(attempt):
                    yield Sleep(backoff_delay(attempt, self.policy, self.rng))
                    attempt += 1
                    continue
                raise outcome.error
            assert isinstance(outcome, Reply)
            if outcome.status_code < 400 or not raise_for_status:
                return outcome
            error = self.status_error(outcome, spec)
            if (spec.retryable and self.policy.should_retry_status(outcome.status_code, attempt)
                    and not is_wrong_kind_of_server(outcome.status_code, str(error))):
                yield Sleep(retry_delay(attempt, error.retry_after, self.policy, self.rng))
                attempt += 1
                continue
            if isinstance(error, NotFoundError) and error.param == "model" and self.served_models is None:
                yield from self._learn_models()
                error = self.status_error(outcome, spec)
            raise error

    def status_error(self, reply: Reply, spec: RequestSpec) -> APIStatusError:
        return error_from_response(
            reply.status_code,
            reply.content,
            reply.headers,
            url=self.base_url + spec.path,
            path=spec.path,
            served_models=self.served_models,
            secrets=(self.api_key,),
        )

    def _learn_models(self) -> Plan[None]:
        """Best effort: fetch the served model names so a 404 can list them."""
        outcome = yield Send(RequestSpec("GET", "/v1/models", retryable=False))
        if isinstance(outcome, Reply) and outcome.status_code == 200:
            try:
                self.served_models = parse_models(outcome.content)
            except Exception:  # noqa: BLE001 - only an enrichment
                self.served_models = []
        else:
            self.served_models = []

    def model_for(self, model: str | None) -> str | None:
        return model if model is not None else self.model

    def learn_model(self) -> Plan[None]:
        """Once per client, when no model was given: ask the server, so results record their model.

        The model is not sent in requests (every route accepts its absence); it is only provenance.
        """
        if self.provenance_model is None and self.served_models is None:
            yield from self._learn_models()
            if self.served_models and len(self.served_models) == 1:
                self.provenance_model = self.served_models[0]
