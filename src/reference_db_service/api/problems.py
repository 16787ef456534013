"""The only error-to-status table, and the handlers rendering RFC 9457 problem details."""

from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reference_db_service.errors import (
    Conflict,
    DatabaseBusy,
    InvalidReference,
    NotFound,
    ReferenceDbError,
    Unauthorized,
)

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

_STATUS_BY_ERROR: dict[type[ReferenceDbError], HTTPStatus] = {
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    NotFound: HTTPStatus.NOT_FOUND,
    InvalidReference: HTTPStatus.UNPROCESSABLE_ENTITY,
    Conflict: HTTPStatus.CONFLICT,
    DatabaseBusy: HTTPStatus.SERVICE_UNAVAILABLE,
}


def status_for(error: ReferenceDbError) -> HTTPStatus:
    for cls in type(error).__mro__:
        status = _STATUS_BY_ERROR.get(cls)
        if status is not None:
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def problem(
    status: HTTPStatus,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "title": status.phrase, "status": status.value}
    body |= {"detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def reference_db_problem(exc: ReferenceDbError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, DatabaseBusy):
        headers["Retry-After"] = "1"
    return problem(status_for(exc), exc.code, exc.detail, headers=headers)


def validation_problem(exc: RequestValidationError) -> JSONResponse:
    # The offending input is left out on purpose: it could be anything, card data included.
    errors = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "validation_failed",
        "the request is not valid; see errors",
        errors=errors,
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReferenceDbError)
    async def on_reference_db_error(_request: Request, exc: ReferenceDbError) -> JSONResponse:
        return reference_db_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = HTTPStatus(exc.status_code)
        code = status.phrase.lower().replace(" ", "_")
        return problem(status, code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("request.failed", path=request.url.path, error_type=type(exc).__name__)
        return problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")
