"""Turn an error answer (any of the server's body shapes) or a transport failure into our exception.

Body shapes (reference §1): ``{"error": {message, type, param, code, ...}}``; the 401 string form
``{"error": "Unauthorized"}``; FastAPI's ``{"detail": ...}`` (unknown path, 405, some 422s); a failed
video job record ``{"status": "failed", "error": {...}}``; and anything else (an HTML page from a proxy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from vomni_nb import _advice
from vomni_nb.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    Interrupted,
    ResponseFormatError,
    VomniError,
    redact,
    status_error,
)
from vomni_nb.protocol.retry import parse_retry_after
from vomni_nb.protocol.untrusted import load_json

__all__ = ["error_from_response", "connection_error", "timeout_error", "advice_for", "is_wrong_kind_of_server",
           "already_advised", "redact_data", "redact_error", "is_redirect"]

MAX_MESSAGE_CHARS = 2000  # of a server's error message in ours: enough to read, not a megabyte of echo

# What vLLM-Omni 0.30.0 answers when a server's model has no handler for the route (503 for images and
# videos, an error body for chat on a TTS model): the task goes to another server, retrying never helps.
_WRONG_KIND = ("no diffusion stage", "video generation handler not initialized",
               "does not support chat completions api")


def is_wrong_kind_of_server(status_code: int, message: str) -> bool:
    """Whether an error answer says the server's model cannot do this kind of request at all."""
    return status_code in (400, 503) and any(phrase in message.lower() for phrase in _WRONG_KIND)


# A server message that already gives one of our remedies needs no second copy of it.
_REMEDY_WORDS = ("resolution", "quantiz", "fewer", "smaller", "retry", "shorter")


def already_advised(message: str, advice: str) -> bool:
    """Whether ``message`` already suggests the remedies ``advice`` gives (two or more in common)."""
    said, ours = message.lower(), advice.lower()
    return sum(1 for word in _REMEDY_WORDS if word in said and word in ours) >= 2


def redact_data(value: Any, secrets: Sequence[str | None]) -> Any:
    """``value`` (a decoded JSON body, or text) with :func:`redact` applied to every string in it.

    Error bodies echo request fields (vLLM's 400 validation message quotes the bad value), so a key
    sent in a field would otherwise come back in ``error.body`` or a failed job's record.
    """
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, Mapping):
        return {redact(str(key), *secrets): redact_data(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item, secrets) for item in value]
    return value


def redact_error(error: BaseException, secrets: Sequence[str | None]) -> BaseException:
    """``error`` (and the errors of ours it was raised from) with every string it carries redacted, in place.

    The one place where what a server echoed leaves the client: the message, ``.body`` (an error
    answer), ``.partial`` (a stream's text, an interrupted one's too), ``.job`` (a failed video job),
    ``.reason`` (a failed batch item), ``.advice``, ``.param`` and ``.url``.
    """
    if not any(secrets):
        return error
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (VomniError, Interrupted)):
            current.args = tuple(redact_data(arg, secrets) if isinstance(arg, str) else arg for arg in current.args)
            for name in ("message", "body", "partial", "job", "reason", "input", "advice", "param", "url"):
                value = getattr(current, name, None)
                if isinstance(value, (str, Mapping, list, tuple)):
                    setattr(current, name, redact_data(value, secrets))
        current = current.__cause__ or current.__context__
    return error


def is_redirect(status_code: int) -> bool:
    return 300 <= status_code < 400

_ADVICE = {
    400: "Check the request parameters against what this model supports.",
    # No "api_key=..." here: redaction would turn it into "api_key=***", as if a key had been sent.
    401: "Give OmniClient the key (its api_key argument), or set VOMNI_API_KEY (or VLLM_API_KEY) to the key the server "
         "was started with (--api-key).",
    405: "The server does not accept this method here; is it a vLLM-Omni server?",
    409: "The resource is busy; try again in a few seconds.",
    413: "Reduce the input: smaller or fewer images/audio, or a shorter prompt.",
    422: "The request is well-formed but cannot be acted on; check the inputs it names.",
    429: "Too many requests: retry later or send fewer at once.",
    500: _advice.SERVER_FAILED,
    503: _advice.OVERLOADED,
    504: "The generation took too long: use fewer steps, fewer frames or a smaller size.",
    507: "Not enough GPU memory or storage: lower the resolution, generate fewer images, or use a quantized model.",
}


def advice_for(status_code: int) -> str:
    if status_code in _ADVICE:
        return _ADVICE[status_code]
    return _ADVICE[500] if status_code >= 500 else "Check the request."


def _reason(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def _body_fields(body: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, type, param, request_id) from any known body shape."""
    if not isinstance(body, Mapping):
        return None, None, None, None
    error = body.get("error")
    if isinstance(error, Mapping):
        message = error.get("message")
        param = error.get("param")
        return (
            str(message) if message is not None else None,
            str(error["type"]) if error.get("type") is not None else None,
            str(param) if param is not None else None,
            str(error["request_id"]) if error.get("request_id") is not None else None,
        )
    if isinstance(error, str):
        return error, None, None, None
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail, None, None, None
    if isinstance(detail, list):  # FastAPI validation details
        parts = []
        for item in detail[:20]:
            location = item.get("loc") if isinstance(item, Mapping) else None
            where = ".".join(str(p) for p in location) if isinstance(location, list) else ""
            parts.append(f"{where}: {item.get('msg')}" if isinstance(item, Mapping) else str(item))
        return "; ".join(parts), None, None, None
    return None, None, None, None


def error_from_response(
    status_code: int,
    content: bytes,
    headers: Mapping[str, str],
    *,
    url: str | None = None,
    path: str = "",
    served_models: Sequence[str] | None = None,
    secrets: Sequence[str | None] = (),
) -> APIStatusError:
    """The APIStatusError subclass for an error answer, with a message that says what to do.

    A redirect (3xx) is an error too, naming where it points: the client never follows one, since the
    request (and its key) must not go to an address the user did not give.
    """
    try:
        body: Any = load_json(content) if content else None
    except ResponseFormatError:
        body = None
    if is_redirect(status_code):
        return _redirect_error(status_code, body, content, headers, url or path, secrets)
    message, error_type, param, request_id = _body_fields(body)
    # Redact before cutting: a cut through the key would leave a piece of it that redaction cannot find.
    if message is not None:
        message = redact(message, *secrets)[:MAX_MESSAGE_CHARS]
    else:
        text = _text_of(content, secrets)[:200].strip()
        looks_html = text.lower().startswith(("<!doctype", "<html"))
        message = "an HTML page instead of an API error (a proxy in between?)" if looks_html else (text or "no body")
    advice = advice_for(status_code)
    if status_code == 404:
        if param == "model" or "model" in message.lower() and "does not exist" in message.lower():
            advice = (
                f"This server serves: {', '.join(served_models)}. Pass one of them as model=..."
                if served_models
                else "Use the model name the server was started with (see client.models())."
            )
        elif message == "Not Found" and isinstance(body, Mapping) and "detail" in body:
            advice = f"The server has no route {path or url}: is it the right kind of server (image, omni, TTS, video)?"
        else:
            advice = "Check the name or id."
    elif status_code == 400 and "model mismatch" in message.lower():
        advice = "Leave model unset or pass the model the server runs."
    elif is_wrong_kind_of_server(status_code, message):
        advice = _advice.WRONG_KIND_OF_SERVER
    if already_advised(message, advice):
        advice = ""
    full = f"{status_code} {_reason(status_code)} from {url or path}: {message.rstrip('.')}." + (f" {advice}" if advice else "")
    error = status_error(
        redact(full, *secrets),
        status_code=status_code,
        url=url,
        body=redact_data(body, secrets) if body is not None else _text_of(content, secrets)[:2000],
        error_type=error_type,
        param=redact(param, *secrets) if param is not None else None,
        request_id=request_id,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )
    error.advice = redact(advice, *secrets)
    return error


def _text_of(content: bytes, secrets: Sequence[str | None]) -> str:
    """The start of a body as redacted text, to be cut after redaction (64 KB: far past any cut we make)."""
    return redact(content[:65536].decode("utf-8", errors="replace"), *secrets)


def _redirect_error(status_code: int, body: Any, content: bytes, headers: Mapping[str, str], url: str,
                    secrets: Sequence[str | None]) -> APIStatusError:
    target = redact(headers.get("location") or "an address it did not give", *secrets)
    message = (f"{status_code} {_reason(status_code)} from {url}: the server redirects to {target[:500]}. "
               "vomni_nb does not follow redirects (the request and its key go only where you said); if you "
               "trust that address, give it as the server's URL.")
    error = status_error(
        redact(message, *secrets),
        status_code=status_code,
        url=url,
        body=redact_data(body, secrets) if body is not None else _text_of(content, secrets)[:2000],
    )
    error.advice = "If you trust that address, give it as the server's URL."
    return error


def connection_error(base_url: str, detail: str = "connection refused") -> APIConnectionError:
    return APIConnectionError(
        f"Could not connect to the server at {base_url} ({detail}). {_advice.START_OR_CHECK_SERVER}",
        url=base_url,
    )


def timeout_error(url: str, timeout: float | None) -> APITimeoutError:
    limit = f" after {timeout:g} s" if timeout else ""
    return APITimeoutError(
        f"No answer from {url}{limit}. The generation may still be running: raise timeout=..., "
        "or use fewer steps or a smaller size.",
        url=url,
    )
