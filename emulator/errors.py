"""Errors in Google's JSON shape, and the handlers that make every failure one of them.

Google APIs answer a failed call with::

    {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
               "errors": [{"message": "...", "domain": "global", "reason": "notFound"}]}}

The Python clients turn ``code`` into an exception class (404 -> ``NotFound``, 412 ->
``PreconditionFailed``) and keep ``errors[].reason``. Whatever goes wrong in the emulator —
a refused mutation, malformed JSON, an unknown route, a bug — the caller gets this shape,
never a traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

import pydantic
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from evac.documents import format_path

log = structlog.get_logger()

# The canonical status that Google pairs with each HTTP code.
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# The reason Google's APIs give for a bare HTTP code when nothing more specific applies.
_DEFAULT_REASON = {
    400: "badRequest",
    401: "required",
    403: "forbidden",
    404: "notFound",
    405: "httpMethodNotAllowed",
    409: "alreadyExists",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
    504: "deadlineExceeded",
}


class ApiError(Exception):
    """A refused API call: an HTTP code, Google's reason word and a sentence for people."""

    def __init__(self, code: int, reason: str, message: str, *, domain: str = "global"):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "status": _STATUS.get(self.code, "UNKNOWN"),
                "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.code)


class RpcError(ApiError):
    """An error of Google's newer APIs (Spanner, Cloud Monitoring v3): ``google.rpc.Status`` as
    JSON, ``{"error": {"code", "message", "status"}}``, without the older ``errors`` list."""

    def __init__(self, code: int, message: str):
        super().__init__(code, _STATUS.get(code, "UNKNOWN"), message)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "status": _STATUS.get(self.code, "UNKNOWN")}}


def http_error(code: int, message: str) -> ApiError:
    """An error for a bare HTTP code, with the reason Google uses for it."""
    return ApiError(code, _DEFAULT_REASON.get(code, "backendError"), message)


def not_found(resource: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{resource}' was not found")


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


def required(message: str) -> ApiError:
    return ApiError(400, "required", message)


def condition_not_met(message: str) -> ApiError:
    return ApiError(412, "conditionNotMet", message)


def already_exists(message: str) -> ApiError:
    return ApiError(409, "alreadyExists", message)


def payload_error(errors: Sequence[Any], prefix: str = "resource") -> ApiError:
    """Turn pydantic/FastAPI validation errors into one 400 naming every bad field."""
    problems = [_describe(err, prefix) for err in errors]
    return ApiError(400, "badRequest", "Invalid JSON payload received. " + " ".join(problems))


def validation_error(exc: pydantic.ValidationError, prefix: str = "resource") -> ApiError:
    return payload_error(exc.errors(), prefix)


def _describe(err: Any, prefix: str) -> str:
    loc = [part for part in err.get("loc", ()) if part != "body"]
    kind = err.get("type", "")
    if kind == "json_invalid":
        return f"Malformed JSON: {err.get('ctx', {}).get('error', 'cannot parse')}."
    if kind == "extra_forbidden":
        field, parent = loc[-1], loc[:-1]
        return f"Unknown name \"{field}\" at '{format_path([prefix, *parent])}': Cannot find field."
    if loc and loc[0] in ("query", "path"):
        where = format_path(loc[1:])
        if kind == "missing":
            return f"Required parameter '{where}' is missing."
        return f"Invalid value for parameter '{where}': {err.get('msg', 'invalid')}."
    where = format_path([prefix, *loc])
    if kind == "missing":
        return f"Required field '{where}' is missing."
    return f"Invalid value at '{where}': {err.get('msg', 'invalid')}."


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    request.state.error_reason = exc.reason
    return exc.response()


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return await _api_error(request, payload_error(exc.errors()))


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = ApiError(404, "notFound", f"The requested URL {request.url.path} was not found on this server.")
    else:
        error = http_error(exc.status_code, str(exc.detail))
    return await _api_error(request, error)


def unexpected_error(request: Request, exc: BaseException) -> JSONResponse:
    """A bug in the emulator: logged with its traceback, answered as Google's 500.

    The traceback is logged as plain text: a renderer that shows frame locals would print
    the whole world, slowly."""
    log.error(
        "emulator.unexpected_error",
        method=request.method,
        path=request.url.path,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
    )
    request.state.error_reason = "backendError"
    return http_error(500, "Internal error in the emulator (see its log).").response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_exception)
