"""vLLM's error bodies, made in one place (reference §1, "Error body shapes")."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi.responses import JSONResponse


def error_body(message: str, code: int, err_type: str | None = None, param: str | None = None) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}``; ``type`` defaults to the HTTP reason phrase."""
    return {
        "error": {
            "message": message,
            "type": err_type if err_type is not None else HTTPStatus(code).phrase,
            "param": param,
            "code": code,
        }
    }


def error_response(
    message: str,
    code: int,
    err_type: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, code, err_type, param), status_code=code, headers=headers)


def http_exception_response(message: str, code: int) -> JSONResponse:
    """What a route's ``HTTPException(code, message)`` becomes: type = reason phrase."""
    return error_response(message, code)


def serving_error_response(message: str, code: int = 400, param: str | None = None) -> JSONResponse:
    """What a serving object's ``ErrorResponse`` becomes: type = BadRequestError, NotFoundError, ..."""
    names = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError", 501: "NotImplementedError"}
    return error_response(message, code, names.get(code, HTTPStatus(code).phrase.replace(" ", "") + "Error"), param)
