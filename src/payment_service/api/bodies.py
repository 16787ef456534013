"""JSON request bodies parsed straight into a model, answering exactly as FastAPI's body parameters do.

FastAPI's request handling (`solve_dependencies`, JSON decoding, then validating the decoded dict) cost
~0.15 ms of CPU per request, as much as the rest of a payment's HTTP layer (`bench/pay_flow.py`).
`read_body` validates the bytes with `model_validate_json` in one step when the body is plain
`application/json`. Whatever that does not accept goes the way FastAPI goes (content type check,
decoding, `model_validate`), so every error keeps FastAPI's shape, order and status:
- an undecodable body fails at once (422 `json_invalid`), before the caller is authenticated. Decoding is
  pydantic's own JSON parser, not `json.loads`: it refuses nesting deeper than 200 levels at once (where
  `json.loads` recursed until a `RecursionError`) and any text that is not UTF-8, both as 422. Routes
  that let FastAPI read their body get the same parser through `EdgeRoute`;
- a body that does not validate yields errors (`loc` starting with "body") that the route raises
  together with its header errors, after authentication, as a `RequestValidationError`.
"""

import email.message
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pydantic_core
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

ModelT = TypeVar("ModelT", bound=BaseModel)
ValidationErrors = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ParsedBody(Generic[ModelT]):
    """The model, or the validation errors to report once the caller is authenticated."""

    model: ModelT | None
    errors: ValidationErrors = field(default_factory=list)


async def read_body(request: Request, model: type[ModelT]) -> ParsedBody[ModelT]:
    """Read and validate the body of `request` as `model`.

    Raises:
        RequestValidationError: the body is not decodable JSON (syntax, encoding, nesting).
        HTTPException: 413 from `SizeLimitMiddleware`, the body is over the limit.
    """
    body = await request.body()
    if body and _is_plain_json(request.headers.get("content-type")):
        try:
            return ParsedBody(model.model_validate_json(body))
        except ValidationError:
            pass  # answered below, with FastAPI's errors
    return _parse_as_fastapi_does(body, request.headers.get("content-type"), model)


def _is_plain_json(content_type: str | None) -> bool:
    return content_type is not None and content_type.partition(";")[0].strip().lower() == "application/json"


def decode_json(body: bytes) -> Any:
    """`body` decoded by pydantic's parser (bounded nesting, UTF-8 only).

    Raises:
        json.JSONDecodeError: as `json.loads` would, so FastAPI answers it with its 422 `json_invalid`.
    """
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:  # the message names a position and the fault, never the body's content
        raise json.JSONDecodeError(str(exc), "", 0) from None


class _EdgeRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class EdgeRoute(APIRoute):
    """A route whose FastAPI body parameters are decoded by `decode_json`, not `json.loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def decode_with_our_parser(request: Request) -> Response:
            return await handler(_EdgeRequest(request.scope, request.receive))

        return decode_with_our_parser


def _parse_as_fastapi_does(body: bytes, content_type: str | None, model: type[ModelT]) -> ParsedBody[ModelT]:
    decoded: Any = body or None  # an empty body is a missing one
    if body and _is_json_type(content_type):
        try:
            decoded = decode_json(body)
        except json.JSONDecodeError as exc:
            error = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}
            raise RequestValidationError([{**error, "ctx": {"error": exc.msg}}]) from None
    if decoded is None:
        return ParsedBody(None, [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        # As FastAPI validates: a body that is not an object is reported as `model_attributes_type`.
        return ParsedBody(model.model_validate(decoded, from_attributes=True))
    except ValidationError as exc:
        return ParsedBody(None, errors_at(("body",), exc))


def _is_json_type(content_type: str | None) -> bool:
    # FastAPI decodes JSON only when a JSON type is named; other bodies reach validation as bytes.
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def errors_at(prefix: tuple[str, ...], exc: ValidationError) -> ValidationErrors:
    """The errors of `exc`, placed under `prefix` (("body",), ("header", name) …) as FastAPI reports them."""
    return [{**error, "loc": (*prefix, *error["loc"])} for error in exc.errors(include_url=False)]


def validate_header(request: Request, name: str, adapter: TypeAdapter[Any]) -> tuple[Any, ValidationErrors]:
    """The header's value validated by `adapter` (None when absent), and the errors, as a FastAPI `Header`."""
    value = request.headers.get(name)
    if value is None:
        return None, []
    try:
        return adapter.validate_python(value), []
    except ValidationError as exc:
        return None, errors_at(("header", name), exc)
