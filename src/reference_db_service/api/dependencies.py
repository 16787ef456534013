"""Request helpers: the database from the lifespan state, the bearer-token guard, path ids, JSON replies."""

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import cast

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, SecretStr

from reference_db_service.errors import NotFound, Unauthorized
from reference_db_service.schemas import parse_numeric_id
from reference_db_service.store.database import Database


def database(request: Request) -> Database:
    """The database from the lifespan state.

    Routes call this rather than declaring a dependency: resolving a dependency costs FastAPI more
    CPU per request than most of these requests' database work.
    """
    return cast(Database, request.state.db)


def bearer_guard(token: SecretStr | None) -> Callable[[Request], Awaitable[None]]:
    """A dependency that demands `Authorization: Bearer <token>` when a token is configured."""
    expected = None if token is None else token.get_secret_value().encode()

    async def require_token(request: Request) -> None:
        if expected is not None and not is_bearer(request.headers.get("authorization", ""), expected):
            msg = "a valid bearer token is required"
            raise Unauthorized(msg)

    return require_token


def is_bearer(authorization: str, expected: bytes) -> bool:
    """Whether an `Authorization` header value presents `Bearer <expected>`."""
    scheme, _, presented = authorization.partition(" ")
    # compare_digest keeps the comparison time independent of where the tokens differ.
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected)


def numeric_id_or(not_found: type[NotFound], value: str, what: str) -> int:
    """A path id as an integer; an id that cannot exist is simply not found."""
    try:
        return parse_numeric_id(value)
    except ValueError:
        msg = f"{what} {value!r} does not exist"
        raise not_found(msg) from None


def json_response(
    body: BaseModel | Sequence[BaseModel], *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialise records once, with pydantic, skipping FastAPI's second validation pass."""
    if isinstance(body, BaseModel):
        content = body.model_dump_json().encode()
    else:
        content = b"[" + b",".join(item.model_dump_json().encode() for item in body) + b"]"
    return Response(content, status_code=status_code, media_type="application/json", headers=headers)


def invalid_input(*loc: str, message: str) -> RequestValidationError:
    """An input error found by hand, reported like FastAPI's own validation errors."""
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])
