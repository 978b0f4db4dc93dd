"""What OmniClient and AsyncOmniClient share: construction, settings, ``with_options``, and the
making of each capability's method from its plan.

Every capability is written once, as a plan with an explicit signature and a docstring
(:mod:`vomni_nb._plans`, :mod:`vomni_nb._video_plans`, :mod:`vomni_nb._service_plans`). Each
client turns a plan into a method with a one-line factory (``image = blocking(_plans.image)`` or
``awaitable(...)``) that gives the method the plan's signature (less the core) and docstring, so
Shift-Tab and ``help()`` document it. The clients then differ only where I/O differs: how they
perform a step of a plan (``_perform``, ``_run``, ``_gather``) and whether methods are coroutines.

Every method's plan runs through :meth:`BaseClient._recording` (:mod:`vomni_nb._recording`): the one
place where results and failures are recorded in the history (``history=``), for every capability.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from collections.abc import Callable
from typing import Any, Generic, Literal, TypeVar, cast

import httpx

from vomni_nb._core import ClientCore, Plan
from vomni_nb._recording import CallRecording, HistorySetting, check_setting
from vomni_nb._transport import DEFAULT_TIMEOUT, TimeoutLike, as_timeout
from vomni_nb.protocol.limits import Limits
from vomni_nb.protocol.retry import RetryPolicy
from vomni_nb.protocol.validate import check_names

__all__ = ["BaseClient", "BaseVoices", "UNCHANGED", "capability_method", "checked"]

TransportT = TypeVar("TransportT")
SleepT = TypeVar("SleepT")
C = TypeVar("C", bound="BaseClient[Any, Any]")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


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
    _history: HistorySetting

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
        history: HistorySetting = None,
        limits: Limits | None = None,
    ) -> None:
        core = ClientCore(server, base_url=base_url, api_key=api_key, model=model, max_retries=max_retries,
                          retry_policy=retry_policy, limits=limits)
        self._setup(core, as_timeout(timeout), transport, sleep, http=None, history=check_setting(history))

    def _setup(self, core: ClientCore, timeout: httpx.Timeout, transport: TransportT | None, sleep: SleepT | None,
               http: Any, history: HistorySetting = None) -> None:
        self._core = core
        self._timeout = timeout
        self._transport = transport
        self._sleep = sleep if sleep is not None else self._default_sleep()
        self._http = http if http is not None else self._new_http()
        self._history = history

    @classmethod
    def _from_core(cls: type[C], core: ClientCore, timeout: httpx.Timeout, *, transport: Any = None,
                   sleep: Any = None, http: Any = None, history: HistorySetting = None) -> C:
        """A client over an existing core (a copy's, or the one a sync sweep shares with its async twin)."""
        client = cls.__new__(cls)
        client._setup(core, timeout, transport, sleep, http, history)
        return client

    def _recording(self, plan: Plan[T]) -> CallRecording:
        """The recording of one call of a method: run ``.plan``; a stream's state goes through ``.stream_state``."""
        return CallRecording(plan, self._history)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _name_capabilities(cls)

    def _default_sleep(self) -> SleepT:
        raise NotImplementedError

    def _new_http(self) -> Any:
        raise NotImplementedError

    def _run(self, plan: Plan[T]) -> Any:
        """Perform a plan's steps (a coroutine in the async client); the plan's result."""
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
        history: HistorySetting | Literal[_Unchanged.UNCHANGED] = UNCHANGED,
        limits: Limits | None = None,
    ) -> C:
        """A copy of this client with some settings changed; this one is left as it is.

        ``client.with_options(timeout=30).image(...)`` or ``with_options(model="...")``; unset
        arguments keep this client's settings (``timeout=None`` means no limit; ``history=False``
        records nothing, None records into the default store). The copy shares this client's
        connections (closing either closes them) and what it learned about the server.
        """
        if max_retries is not None and retry_policy is None:
            retry_policy = dataclasses.replace(self._core.policy, max_retries=max_retries)
        core = self._core.with_options(base_url=base_url, api_key=api_key, model=model, retry_policy=retry_policy,
                                       limits=limits)
        new_timeout = self._timeout if timeout is UNCHANGED else as_timeout(timeout)
        new_history = self._history if history is UNCHANGED else check_setting(history)
        return self._from_core(core, new_timeout, transport=self._transport, sleep=self._sleep, http=self._http,
                               history=new_history)


class BaseVoices:
    """``client.voices``: list, upload (with the speaker's consent) and delete named voices."""

    def __init__(self, client: BaseClient[Any, Any]) -> None:
        self._core = client._core
        self._run = client._run
        self._recording = client._recording

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _name_capabilities(cls)


def _shown(annotation: Any, namespace: dict[str, Any]) -> Any:
    """How a parameter's annotation reads in Shift-Tab: the closed choices (``Literal['wav', 'pcm', ...]``)
    where it names some, rather than the alias's name; otherwise the annotation's text as written."""
    if not isinstance(annotation, str):
        return annotation
    try:
        value = eval(annotation, namespace)  # noqa: S307 - our own annotations, as typing.get_type_hints does
    except Exception:  # noqa: BLE001 - a forward reference: the text documents it
        return annotation
    return value if "Literal[" in repr(value) else annotation


def _plan_result(annotation: Any) -> Any:
    """``"Plan[X]"`` -> ``"X"``: what running the plan gives (annotations are text here: PEP 563)."""
    if isinstance(annotation, str) and annotation.startswith("Plan[") and annotation.endswith("]"):
        return annotation[len("Plan["):-1]
    return annotation


def checked(plan: F) -> F:
    """``plan`` behind a check of its keyword names: a misspelt one is an InvalidRequestError naming the
    valid ones (Python's own TypeError would name a private function and list nothing)."""
    parameters = list(inspect.signature(plan).parameters.values())[1:]
    valid = tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    accepted = frozenset(valid)

    def start(*args: Any, **kwargs: Any) -> Any:
        if not accepted.issuperset(kwargs):
            check_names(f"{plan.__name__}()", kwargs, valid)
        return plan(*args, **kwargs)

    return cast(F, start)


def capability_method(method: F, plan: Callable[..., Any], returns: Any = None) -> F:
    """``method`` (which runs ``plan``) dressed as the plan, so Shift-Tab and help() document it: the
    plan's docstring, and its signature with ``self`` for the core and ``returns`` (default: what the
    plan gives) as the result."""
    namespace = getattr(plan, "__globals__", {})
    signature = inspect.signature(plan)
    _core, *rest = signature.parameters.values()
    parameters = [p.replace(annotation=_shown(p.annotation, namespace)) for p in rest]
    result = _plan_result(signature.return_annotation) if returns is None else returns
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *parameters],
        return_annotation=result)
    method.__annotations__ = {**{p.name: p.annotation for p in parameters}, "return": result}
    method.__doc__ = plan.__doc__
    method.__wrapped__ = plan  # type: ignore[attr-defined]  # typing.get_type_hints reads the plan's globals
    method.__name__ = method.__qualname__ = plan.__name__
    method._runs_plan = plan  # type: ignore[attr-defined]  # marks it for _name_capabilities
    return method


def _name_capabilities(cls: type) -> None:
    """Give each capability method of ``cls`` the name it has there (``Voices.list`` runs ``list_voices``)."""
    for name, member in vars(cls).items():
        if inspect.isfunction(member) and hasattr(member, "_runs_plan"):
            member.__name__ = name
            member.__qualname__ = f"{cls.__qualname__}.{name}"
