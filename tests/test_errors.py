"""Error answers of every shape become the right exception, with advice and without secrets."""

from __future__ import annotations

import json

import pytest

from vomni_nb import errors as E
from vomni_nb.protocol.status import connection_error, error_from_response, timeout_error


def _err(status: int, body: object, headers: dict[str, str] | None = None, **kwargs: object) -> E.APIStatusError:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return error_from_response(status, content, headers or {}, url="http://h/v1/x", **kwargs)  # type: ignore[arg-type]


def _obj(message: str, code: int, type_: str = "Bad Request", param: str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@pytest.mark.parametrize(
    ("status", "cls", "advice"),
    [
        (400, E.BadRequestError, "Check the request"),
        (401, E.AuthenticationError, "VOMNI_API_KEY"),
        (404, E.NotFoundError, "Check the name"),
        (409, E.ConflictError, "busy"),
        (413, E.PayloadTooLargeError, "Reduce the input"),
        (422, E.UnprocessableEntityError, "cannot be acted on"),
        (429, E.RateLimitError, "retry later"),
        (500, E.ServerError, "%omni_server logs"),
        (502, E.ServerError, "%omni_server logs"),
        (503, E.OverloadedError, "retry later"),
        (504, E.GatewayTimeoutError, "fewer steps"),
        (507, E.InsufficientStorageError, "lower the resolution"),
    ],
)
def test_status_classes_and_advice(status: int, cls: type, advice: str) -> None:
    error = _err(status, _obj("boom", status))
    assert type(error) is cls and error.status_code == status and advice in str(error) and "boom" in str(error)


def test_the_four_body_shapes_and_more() -> None:
    validation = _err(400, _obj("1 validation error:\n  {'loc': ('body', 'n')}", 400, param="body.n"))
    assert validation.param == "body.n" and validation.error_type == "Bad Request"
    serving = _err(404, _obj("The model `x` does not exist.", 404, "NotFoundError", "model"), served_models=["a", "b"])
    assert "This server serves: a, b" in str(serving)
    engine = _err(500, {"error": {"message": "EngineCore died", "type": "InternalServerError", "param": None,
                                  "code": 500, "request_id": "r1", "error_stage_id": 0}})
    assert engine.request_id == "r1"
    unauthorized = _err(401, {"error": "Unauthorized"})
    assert isinstance(unauthorized, E.AuthenticationError) and "Unauthorized" in str(unauthorized)
    assert "***" not in str(unauthorized)  # no key was sent: nothing may look redacted
    route = _err(404, {"detail": "Not Found"}, path="/v1/audio/speech")
    assert "no route /v1/audio/speech" in str(route)
    details = _err(422, {"detail": [{"loc": ["body", "image"], "msg": "Field required"}]})
    assert "body.image: Field required" in str(details)
    proxy = _err(502, b"<html><body>Bad gateway</body></html>")
    assert isinstance(proxy, E.ServerError) and "HTML page" in str(proxy)
    unhealthy = _err(503, {"status": "unhealthy"})
    assert isinstance(unhealthy, E.OverloadedError)
    mismatch = _err(400, _obj("Model mismatch: request specifies 'a' but server is running 'b'.", 400))
    assert "Leave model unset" in str(mismatch)


def test_retry_after_is_read() -> None:
    assert _err(503, _obj("busy", 503), {"retry-after": "3"}).retry_after == 3.0
    assert _err(503, _obj("busy", 503)).retry_after is None


def test_secrets_are_redacted_from_messages() -> None:
    error = _err(400, _obj("bad header Bearer sk-secret and key sk-secret", 400), secrets=["sk-secret"])
    assert "sk-secret" not in str(error)
    assert E.redact("--api-key abc VLLM_API_KEY=abc", None) == "--api-key *** VLLM_API_KEY=***"


def test_connection_and_timeout_messages() -> None:
    refused = connection_error("http://127.0.0.1:9")
    assert isinstance(refused, ConnectionError) and "http://127.0.0.1:9" in str(refused)
    assert "%omni_server status" in str(refused)
    slow = timeout_error("http://h/v1/x", 5)
    assert isinstance(slow, TimeoutError) and isinstance(slow, E.APIConnectionError) and "5 s" in str(slow)


def test_status_error_factory() -> None:
    assert type(E.status_error("x", status_code=418)) is E.APIStatusError
    assert type(E.status_error("x", status_code=599)) is E.ServerError
    assert E.status_error("x", status_code=503, retry_after=2.0).retry_after == 2.0
    # The docstring drawing names every class.
    assert E.__doc__ is not None
    for name in E.__all__:
        if name[0].isupper():
            assert name in E.__doc__, name
