"""The only error-to-HTTP-status table, and the handlers rendering RFC 9457 problem details.

A `PaymentServiceError` finds its status by walking its class hierarchy (`type(error).__mro__`) to the
nearest class in `ERROR_STATUS`, so a new leaf error needs no new row. 503s carry `Retry-After`.
Anything unexpected is a 500 naming only the request id (see `middleware.py`); validation errors list
the fields at fault, never the values sent (they may be card data).
"""

from typing import Any, Final

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Route

from payment_service.api.middleware import current_request_id
from payment_service.api.schemas import PROBLEM_JSON
from payment_service.domain.errors import (
    AuthenticationFailed,
    Conflict,
    DbServiceError,
    DependencyUnavailable,
    GatewayConfigurationError,
    GatewayError,
    InvalidRequest,
    NotFound,
    PaymentServiceError,
    PermissionDenied,
    RequestTooLarge,
)

log = structlog.get_logger(__name__)

ERROR_STATUS: Final[dict[type[PaymentServiceError], int]] = {
    PaymentServiceError: 500,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidRequest: 422,
    RequestTooLarge: 413,
    DependencyUnavailable: 503,
    DbServiceError: 502,
    GatewayError: 502,
    # Our credentials or merchant set-up: the client can do nothing but come back later.
    GatewayConfigurationError: 503,
}
RETRY_AFTER_S: Final = 5

# 5xx details are ours to word: the errors' own messages name internals.
_PUBLIC_DETAILS: Final = {
    502: "A service we depend on answered unexpectedly.",
    503: "A service we depend on is unavailable; nothing was charged. Please retry later.",
}


def status_for(error: PaymentServiceError) -> int:
    for cls in type(error).__mro__:
        status = ERROR_STATUS.get(cls)
        if status is not None:
            return status
    return 500


def title_for(code: str) -> str:
    return code.replace("_", " ").capitalize()


def problem_dict(status: int, code: str, *, detail: str | None = None, **extra: Any) -> dict[str, Any]:
    problem: dict[str, Any] = {"type": "about:blank", "title": title_for(code), "status": status, "code": code}
    if detail is not None:
        problem["detail"] = detail
    request_id = current_request_id()
    if request_id is not None:
        problem["request_id"] = request_id
    problem.update(extra)
    return problem


def problem_response(
    status: int, code: str, *, detail: str | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    body = orjson.dumps(problem_dict(status, code, detail=detail, **extra))
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(error: PaymentServiceError) -> Response:
    status = status_for(error)
    detail = _PUBLIC_DETAILS.get(status, error.message) if status >= 500 else error.message
    if status >= 500:
        log.warning("request.failed", code=error.code, error=error.message)
    return problem_response(status, error.code, detail=detail)


async def handle_service_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, PaymentServiceError):  # registered for PaymentServiceError only
        raise exc
    return error_response(exc)


async def handle_validation_error(_request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    return problem_response(422, "invalid_request", detail="The request is not valid.", errors=errors)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(exc.status_code, code, headers=headers)


def _allowed_methods(request: Request) -> str:
    # Starlette names the methods of the first route matching the path only; a path served by two
    # routes (GET and POST of /payments/{id}/refunds) allows the methods of both.
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PaymentServiceError, handle_service_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
