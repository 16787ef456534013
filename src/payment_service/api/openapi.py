"""The OpenAPI document as the API answers: hand-read request bodies, and every error as problem+json.

FastAPI documents what routes declare. This adds what the edge does besides: the `PayRequest` and
`RefundRequest` schemas (those routes read their bodies themselves), 401 on every authenticated operation, 413 and 431 from the size
limits and 500 on every operation, and `application/problem+json` (`ProblemResponse`) as the media type
of every 4xx and 5xx answer, in place of FastAPI's `application/json` and `HTTPValidationError`.
"""

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from payment_service.api.schemas import PROBLEM_JSON, PayRequest, RefundRequest

_PROBLEM_REF: Final = {"$ref": "#/components/schemas/ProblemResponse"}
_EDGE_ANSWERS: Final = {
    "413": "The body is over the configured maximum (`PAYMENTS_API__MAX_BODY_BYTES`); nothing was read.",
    "431": "The headers are over the configured maximum (`PAYMENTS_API__MAX_HEADER_BYTES`).",
    "500": "An unexpected error; the problem names only the request id.",
}
NOT_A_PROBLEM: Final = "x-not-a-problem"
_UNAUTHENTICATED: Final = "Missing, invalid or expired bearer token."
_FASTAPI_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` build (once) the document described in the module docstring."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(_request_body_schemas())
            for name in _FASTAPI_VALIDATION_SCHEMAS:
                components.pop(name, None)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    _describe_errors(operation)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if operation.get("security"):
        responses.setdefault("401", {"description": _UNAUTHENTICATED})
    for status, description in _EDGE_ANSWERS.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        # A route's own JSON document for an error status (readiness's 503) is marked so and left as it is.
        if response.pop(NOT_A_PROBLEM, False) or int(status) < 400:
            continue
        media = response.setdefault("content", {})
        # Examples written for the problem type are kept; FastAPI's application/json copy is not.
        problem = media.pop(PROBLEM_JSON, None) or media.pop("application/json", None) or {}
        media.pop("application/json", None)
        media[PROBLEM_JSON] = {**problem, "schema": _PROBLEM_REF}


def _request_body_schemas() -> dict[str, Any]:
    """The components of the bodies routes read themselves, as FastAPI renders them."""
    routes = [
        APIRoute("/pay", _pay_request_body, methods=["POST"]),
        APIRoute("/refund", _refund_request_body, methods=["POST"]),
    ]
    bodies = get_openapi(title="bodies", version="0", routes=routes)
    schemas: dict[str, Any] = bodies["components"]["schemas"]
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return schemas


async def _pay_request_body(body: PayRequest) -> None:
    """Never routed: FastAPI renders `PayRequest`'s schema from this parameter."""


async def _refund_request_body(body: RefundRequest) -> None:
    """Never routed, as `_pay_request_body`."""
