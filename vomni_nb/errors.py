"""The one exception tree of vomni_nb.

::

    VomniError                          everything below; catch this to catch all of ours
    ├── InvalidRequestError (+ValueError) bad input, caught before any request is sent
    │   └── WrongServerError            the server's model cannot do this task (.model, .task, .servers that can)
    ├── APIError                        a request was sent and did not give a usable result
    │   ├── APIStatusError              the server answered with an error status (.status_code, .body)
    │   │   ├── BadRequestError          400
    │   │   ├── AuthenticationError      401
    │   │   ├── NotFoundError            404
    │   │   ├── ConflictError            409
    │   │   ├── PayloadTooLargeError     413
    │   │   ├── UnprocessableEntityError 422
    │   │   ├── RateLimitError           429
    │   │   └── ServerError              5xx
    │   │       ├── OverloadedError      503
    │   │       ├── GatewayTimeoutError  504
    │   │       └── InsufficientStorageError 507
    │   ├── APIConnectionError          no answer: refused, reset, DNS (+ConnectionError)
    │   │   └── APITimeoutError         no answer in time (+TimeoutError)
    │   │       └── JobTimeoutError     a video job not done in time, left running (.job_id)
    │   ├── StreamError                 an in-band error after a stream started (.partial)
    │   ├── ResponseFormatError         a body we cannot read (HTML from a proxy, truncated JSON, bad base64)
    │   ├── JobFailedError              a video job ended with status "failed" (.job)
    │   ├── BatchItemError              one item of a batch failed; it stands in the item's place (.index)
    │   └── PartialBatchError           some images of a sweep failed, asked for with strict=True (.partial, .errors)
    ├── ServerManagerError              the kernel-side server manager
    │   ├── ServerStartError            a launch failed (.cause, .advice, .log_tail)
    │   │   ├── ServerExited            the process exited before it was ready (.returncode)
    │   │   └── ServerStartTimeout      not ready before the deadline
    │   ├── PortInUseError              the port is taken by another program
    │   └── NoGPUError                  a real launch without a GPU (use --sim)
    └── HistoryError                    the history store: a file we did not write, a full disk (.path)

    KeyboardInterrupt (Python's)
    └── Interrupted                     Ctrl-C during a request: the server aborted it (.partial)

``Interrupted`` stays outside ``VomniError`` on purpose: it must never be caught by ``except
Exception``, and ``except KeyboardInterrupt`` still catches it.

Status errors are made in one place, :func:`status_error`, which picks the class for a status.
Every message says what to do next, and ``advice`` holds that last part alone when it is known. API
keys never appear in a message: build messages only through :func:`redact` when they may contain
request data. In IPython these errors render short (:mod:`vomni_nb._tracebacks`): the cause, the
advice, and the line of the cell that raised; ``%xmode Verbose`` shows the whole traceback.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "VomniError",
    "InvalidRequestError",
    "WrongServerError",
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "UnprocessableEntityError",
    "RateLimitError",
    "ServerError",
    "OverloadedError",
    "GatewayTimeoutError",
    "InsufficientStorageError",
    "APIConnectionError",
    "APITimeoutError",
    "StreamError",
    "ResponseFormatError",
    "PartialBatchError",
    "JobFailedError",
    "ServerManagerError",
    "ServerStartError",
    "ServerExited",
    "ServerStartTimeout",
    "PortInUseError",
    "NoGPUError",
    "HistoryError",
    "JobTimeoutError",
    "BatchItemError",
    "Interrupted",
    "redact",
    "status_error",
]

_BEARER = re.compile(r"(Bearer\s+)[^\s\"',]+", re.IGNORECASE)
_KEY_ARG = re.compile(r"(--api-key[= ]|api_key=|VLLM_API_KEY=|VOMNI_API_KEY=)[^\s\"',]+")


def redact(text: str, *secrets: str | None) -> str:
    """Remove bearer tokens, ``--api-key`` values and each given secret from ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _BEARER.sub(r"\1***", text)
    return _KEY_ARG.sub(r"\1***", text)


class _ShortTraceback:
    """IPython shows these errors as a few lines (cause, advice, the cell line), not the whole stack."""

    advice: str = ""  # the message's last part, what to do next (empty when not known apart)

    @property
    def _render_traceback_(self) -> Any:
        # IPython calls this when it exists; under `%xmode Verbose` it "does not exist", so the full one shows.
        from vomni_nb import _tracebacks

        if _tracebacks.full_wanted():
            raise AttributeError("_render_traceback_")
        return lambda: _tracebacks.render(self)  # type: ignore[arg-type]


class VomniError(_ShortTraceback, Exception):
    """Base of every error vomni_nb raises on purpose."""


class InvalidRequestError(VomniError, ValueError):
    """Input that cannot make a valid request; raised before anything is sent."""


class WrongServerError(InvalidRequestError):
    """The server's model cannot do this (speech from an image model): the request went nowhere useful.

    Raised before sending when the client knows the model (``model``, ``task``: what was asked), or
    made from the server's own refusal when it does not (``__cause__`` is then that status error).
    ``servers`` names the servers of this kernel that can (the magics' routing fills it in; empty: none
    runs, or the client alone could not know).
    """

    def __init__(self, message: str, *, model: str | None = None, task: str | None = None, advice: str = "",
                 servers: Any = ()) -> None:
        super().__init__(message)
        self.model = model
        self.task = task
        self.advice = advice
        self.servers = list(servers)


class APIError(VomniError):
    """A request reached (or tried to reach) a server and gave no usable result."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


class APIStatusError(APIError):
    """The server answered with an HTTP error status.

    Each subclass pins the ``status_code`` it stands for, so ``NotFoundError("...")`` needs no code and
    ``except`` clauses and :func:`status_error` agree on one table. ``ServerError`` (500) and
    ``APIStatusError`` (0) also take codes that have no class of their own (502, 418, ...).
    """

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        url: str | None = None,
        body: Any = None,
        error_type: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.status_code = type(self).status_code if status_code is None else status_code
        self.body = body
        self.error_type = error_type
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequestError(APIStatusError):
    """400: the server refused the request's content."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """401: missing or wrong API key."""

    status_code = 401


class NotFoundError(APIStatusError):
    """404: unknown model, voice, job or route."""

    status_code = 404


class ConflictError(APIStatusError):
    """409: the resource is busy (cancellation in progress, output not yet saved)."""

    status_code = 409


class PayloadTooLargeError(APIStatusError):
    """413: the input is too large for the server."""

    status_code = 413


class UnprocessableEntityError(APIStatusError):
    """422: a well-formed request the server cannot act on."""

    status_code = 422


class RateLimitError(APIStatusError):
    """429: too many requests."""

    status_code = 429


class ServerError(APIStatusError):
    """5xx: the server failed."""

    status_code = 500


class OverloadedError(ServerError):
    """503: the server is busy or not healthy."""

    status_code = 503


class GatewayTimeoutError(ServerError):
    """504: the server gave up waiting for the generation."""

    status_code = 504


class InsufficientStorageError(ServerError):
    """507: not enough GPU memory or disk for this request."""

    status_code = 507


class APIConnectionError(APIError, ConnectionError):
    """No HTTP answer at all."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """No answer before the timeout."""


class JobTimeoutError(APITimeoutError):
    """A video job not done before ``timeout=``: it is left running, ``client.wait_video(job_id)`` resumes."""

    def __init__(self, message: str, *, url: str | None = None, job_id: str = "", job: Any = None) -> None:
        super().__init__(message, url=url)
        self.job_id = job_id
        self.job = job


class StreamError(APIError):
    """An error event arrived after a stream had started; ``partial`` holds what came before."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        partial: Any = None,
        error_type: str | None = None,
        code: int | str | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.partial = partial
        self.error_type = error_type
        self.code = code


class ResponseFormatError(APIError):
    """A response body that does not match the protocol."""


class PartialBatchError(APIError):
    """Some requests of a sweep failed and the caller asked for strictness (``strict=True``).

    ``partial`` is the whole batch (or grid) with each failure marked in its place, ``errors`` the
    failures' errors; without strictness that batch is returned instead of this error.
    """

    def __init__(self, message: str, *, partial: Any = None, errors: Any = ()) -> None:
        super().__init__(message)
        self.partial = partial
        self.errors = list(errors)


class JobFailedError(APIError):
    """A video job finished with status ``failed``."""

    def __init__(self, message: str, *, url: str | None = None, job: Any = None) -> None:
        super().__init__(message, url=url)
        self.job = job


class BatchItemError(APIError):
    """One item of a batch request failed; the batch's other items did not. It stands in the item's place
    in the returned list. ``index`` is its place (``batch[index]``; the message counts from 1, as the
    displayed list does), ``input`` what it was to say, ``reason`` the server's words."""

    def __init__(self, message: str, *, url: str | None = None, index: int = 0, input: str = "", reason: str = "",
                 advice: str = "") -> None:
        super().__init__(message, url=url)
        self.index = index
        self.input = input
        self.reason = reason
        self.advice = advice

    def __repr__(self) -> str:
        return f"BatchItemError(index={self.index}, {self.reason!r})"


class ServerManagerError(VomniError):
    """Base of the server manager's errors."""


class ServerStartError(ServerManagerError):
    """A server did not become ready. ``cause`` and ``advice`` are one line each; ``kind`` is the diagnosis's
    stable tag (``"oom"``, ``"port-in-use"``, ``"timeout"``, … ``"unknown"``); ``before`` says what the start
    had already stopped (a server of the same model with other arguments, a server holding the name)."""

    def __init__(
        self,
        message: str,
        *,
        cause: str = "",
        advice: str = "",
        kind: str = "",
        log_tail: str = "",
        log_path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.advice = advice
        self.kind = kind
        self.log_tail = log_tail
        self.log_path = log_path
        self.before: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = super().__str__()
        return text + "".join(f"\nBefore this start, it {note}." for note in self.before)


class ServerExited(ServerStartError):
    """The server process exited (before it was ready, or while in use)."""

    def __init__(self, message: str, *, returncode: int | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.returncode = returncode


class ServerStartTimeout(ServerStartError, TimeoutError):
    """The server was alive but not ready before the deadline."""


class PortInUseError(ServerManagerError, OSError):
    """The requested port is held by another program."""


class NoGPUError(ServerManagerError):
    """A real vLLM-Omni launch was asked for on a machine without an NVIDIA GPU."""


class HistoryError(VomniError):
    """The history store cannot be used: a database or folder it did not write, a full disk, a bad record.

    A generation that fails to be recorded has still succeeded: callers show the result and this message.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class Interrupted(_ShortTraceback, KeyboardInterrupt):
    """Ctrl-C during a request. The connection was closed, so the server aborted the generation (a video
    job is cancelled); ``partial`` holds what had arrived (a stream's text or audio), ``url`` the server."""

    def __init__(self, message: str, *, url: str | None = None, partial: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.partial = partial


# One table from status to class, read from the classes' own pinned codes.
_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    cls.status_code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        UnprocessableEntityError,
        RateLimitError,
        OverloadedError,
        GatewayTimeoutError,
        InsufficientStorageError,
    )
}


def status_error(message: str, *, status_code: int, **details: Any) -> APIStatusError:
    """The :class:`APIStatusError` subclass for ``status_code`` (5xx without a class of its own: ServerError)."""
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIStatusError
    return cls(message, status_code=status_code, **details)
