"""Turn an error answer (any of the server's body shapes) or a transport failure into our exception.

Body shapes (reference §1): ``{"error": {message, type, param, code, ...}}``; the 401 string form
``{"error": "Unauthorized"}``; FastAPI's ``{"detail": ...}`` (unknown path, 405, some 422s); a failed
video job record ``{"status": "failed", "error": {...}}``; and anything else (an HTML page from a proxy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from vomni_nb import _advice
from vomni_nb.errors import APIConnectionError, APIStatusError, APITimeoutError, redact, status_error
from vomni_nb.protocol.retry import parse_retry_after

__all__ = ["error_from_response", "connection_error", "timeout_error", "advice_for", "is_wrong_kind_of_server",
           "already_advised", "redact_data"]


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
        parts = [
            f"{'.'.join(str(p) for p in item.get('loc', ()))}: {item.get('msg')}" if isinstance(item, Mapping) else str(item)
            for item in detail
        ]
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
    """The APIStatusError subclass for an error answer, with a message that says what to do."""
    try:
        body: Any = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        body = None
    message, error_type, param, request_id = _body_fields(body)
    if message is None:
        text = content[:200].decode("utf-8", errors="replace").strip()
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
        elif message == "Not Found" and body is not None and "detail" in body:
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
        body=redact_data(body if body is not None else content[:2000].decode("utf-8", errors="replace"), secrets),
        error_type=error_type,
        param=redact(param, *secrets) if param is not None else None,
        request_id=request_id,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )
    error.advice = redact(advice, *secrets)
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
