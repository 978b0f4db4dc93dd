"""What OmniClient and AsyncOmniClient share: construction, settings, ``with_options``, sweeps' set-up.

The two clients differ only where I/O differs: how a step of a plan is performed (``_perform`` and
``_run``: a blocking send or an awaited one) and whether their methods are coroutines. Everything a
request does, its retries and its errors live in the plans (:mod:`vomni_nb._plans`), run by both.
Each public method is written twice, once per client, with the same explicit signature (a test
holds them identical), so Shift-Tab documents either; the async twins take the sync docstrings.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

import httpx

from vomni_nb import _plans
from vomni_nb._core import ClientCore
from vomni_nb._transport import DEFAULT_TIMEOUT, TimeoutLike, as_timeout
from vomni_nb.errors import InvalidRequestError
from vomni_nb.protocol.retry import RetryPolicy

__all__ = ["BaseClient", "UNCHANGED", "call_arguments", "share_docstrings"]

TransportT = TypeVar("TransportT")
SleepT = TypeVar("SleepT")
C = TypeVar("C", bound="BaseClient[Any, Any]")


class _Unchanged(enum.Enum):
    UNCHANGED = "unchanged"

    def __repr__(self) -> str:
        return "UNCHANGED"  # how with_options' signature reads in Shift-Tab


UNCHANGED = _Unchanged.UNCHANGED


class BaseClient(Generic[TransportT, SleepT]):
    """Construction and settings of both clients (see OmniClient's docstring for the arguments).

    ``TransportT`` is the httpx transport type and ``SleepT`` the sleep function of the subclass (a
    blocking one, or a coroutine function).
    """

    _core: ClientCore
    _timeout: httpx.Timeout
    _transport: TransportT | None
    _sleep: SleepT

    def __init__(
        self,
        server: Any = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        transport: TransportT | None = None,
        sleep: SleepT | None = None,
    ) -> None:
        core = ClientCore(server, base_url=base_url, api_key=api_key, model=model, max_retries=max_retries,
                          retry_policy=retry_policy)
        self._setup(core, as_timeout(timeout), transport, sleep, http=None)

    def _setup(self, core: ClientCore, timeout: httpx.Timeout, transport: TransportT | None, sleep: SleepT | None,
               http: Any) -> None:
        self._core = core
        self._timeout = timeout
        self._transport = transport
        self._sleep = sleep if sleep is not None else self._default_sleep()
        self._http = http if http is not None else self._new_http()

    @classmethod
    def _from_core(cls: type[C], core: ClientCore, timeout: httpx.Timeout, *, transport: Any = None,
                   sleep: Any = None, http: Any = None) -> C:
        """A client over an existing core (a copy's, or the one a sync sweep shares with its async twin)."""
        client = cls.__new__(cls)
        client._setup(core, timeout, transport, sleep, http)
        return client

    def _default_sleep(self) -> SleepT:
        raise NotImplementedError

    def _new_http(self) -> Any:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return self._core.base_url

    @property
    def model(self) -> str | None:
        """The model results record (given, from the Server handle, or learned from the server)."""
        return self._core.recorded_model

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)

    def with_options(
        self: C,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        timeout: TimeoutLike | Literal[_Unchanged.UNCHANGED] = UNCHANGED,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> C:
        """A copy of this client with some settings changed; this one is left as it is.

        ``client.with_options(timeout=30).image(...)`` or ``with_options(model="...")``; unset
        arguments keep this client's settings (``timeout=None`` means no limit). The copy shares this
        client's connections (closing either closes them) and what it learned about the server.
        """
        if max_retries is not None and retry_policy is None:
            retry_policy = dataclasses.replace(self._core.policy, max_retries=max_retries)
        core = self._core.with_options(base_url=base_url, api_key=api_key, model=model, retry_policy=retry_policy)
        new_timeout = self._timeout if timeout is UNCHANGED else as_timeout(timeout)
        return self._from_core(core, new_timeout, transport=self._transport, sleep=self._sleep, http=self._http)

    @staticmethod
    def _sweep_jobs(seeds: Sequence[int] | None, grid: _plans.Grid | None, concurrency: int,
                    options: dict[str, Any]) -> list[dict[str, Any]]:
        """Check a sweep before anything is sent; the per-request overrides (``options`` loses its ``seed``)."""
        jobs = _plans.sweep_jobs(seeds, grid, options.pop("seed", None))
        if concurrency < 1:
            raise InvalidRequestError("concurrency must be at least 1.")
        return jobs



def call_arguments(method_locals: Mapping[str, Any], *skip: str) -> dict[str, Any]:
    """A method's arguments, from its ``locals()`` taken before it binds anything else, less ``self``
    and ``skip``: the explicit signature stays the contract, and the plan gets every argument by name."""
    return {name: value for name, value in method_locals.items() if name != "self" and name not in skip}


def share_docstrings(twin: type, original: type) -> None:
    """Give each public method of ``twin`` without a docstring the one of ``original``'s method of that name."""
    for name, member in vars(twin).items():
        if name.startswith("_") or not inspect.isfunction(member) or member.__doc__:
            continue
        source = getattr(original, name, None)
        if source is not None and source.__doc__:
            member.__doc__ = source.__doc__
