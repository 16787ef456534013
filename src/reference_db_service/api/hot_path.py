"""`HotPathMiddleware`: the calls a payment makes, answered without FastAPI's per-request machinery.

FastAPI's routing, dependency solving and parameter validation cost several times the database work
of these small reads and writes: on the 2-core build machine, a route answering a fixed body costs
about 120 µs of CPU per request under uvicorn, a bare ASGI app 27 µs, reading an order 30 µs. A
payment makes four calls (`GET /orders/{id}`, `GET /customers/{id}`, `GET /products?ids=…`,
`PATCH /orders/{id}`) and the payment consumer one (`PUT /payments/{id}`). This middleware answers
those with the routes' own reply functions, and hands everything else to the app untouched: other
routes and methods, paths with `%` escapes, a products query other than a plain `ids=…`, a missing
or wrong token, a body that is not `application/json`, not JSON, or fails its model. So every input
error is still FastAPI's own, in FastAPI's order, and the routes remain the one declaration of the
API (OpenAPI). What the reply functions raise is rendered by the same functions as the app's
exception handlers (`problems.py`); anything unexpected propagates to the app's server-error
handler, as from a route. `tests/integration/reference_db/test_hot_path.py` holds the two to the
same answers.
"""

import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, SecretStr
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reference_db_service.api import catalog, orders, payments
from reference_db_service.api.dependencies import is_bearer
from reference_db_service.api.problems import reference_db_problem, validation_problem
from reference_db_service.errors import ReferenceDbError
from reference_db_service.schemas import OrderPaymentUpdateRequest, PaymentPutRequest
from reference_db_service.store.database import Database

Reply = Callable[[Database], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


class HotPathMiddleware:
    def __init__(self, app: ASGIApp, *, token: SecretStr | None) -> None:
        self.app = app
        self._token = None if token is None else token.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._is_authorised(scope):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        reply = await self._reply_for(scope, receive, received)
        if reply is None:
            await self.app(scope, _replaying(received, receive), send)
            return
        try:
            response = await reply(cast(Database, scope["state"]["db"]))
        except ReferenceDbError as exc:
            response = reference_db_problem(exc)
        except RequestValidationError as exc:
            response = validation_problem(exc)
        await response(scope, receive, send)

    def _is_authorised(self, scope: Scope) -> bool:
        if self._token is None:
            return True
        authorization = _header(scope, b"authorization")
        return authorization is not None and is_bearer(authorization.decode("latin-1"), self._token)

    async def _reply_for(self, scope: Scope, receive: Receive, received: list[Message]) -> Reply | None:
        """The reply for a hot call with valid input, or None for the app to answer."""
        raw_path: bytes | None = scope.get("raw_path")
        if raw_path is None or b"%" in raw_path:  # the app decides what an escaped path means
            return None
        match scope["method"], scope["path"].split("/"):
            case "GET", ["", "orders", order_id] if order_id:
                return lambda db: orders.order_reply(db, order_id)
            case "GET", ["", "customers", customer_id] if customer_id:
                return lambda db: catalog.customer_reply(db, customer_id)
            case "GET", ["", "products"]:
                ids = _plain_ids(scope["query_string"])
                return None if ids is None else lambda db: catalog.products_reply(db, ids)
            case "PATCH", ["", "orders", order_id] if order_id:
                update = await _body(scope, receive, received, OrderPaymentUpdateRequest)
                return None if update is None else lambda db: orders.order_payment_reply(db, order_id, update)
            case "PUT", ["", "payments", payment_id] if payment_id:
                record = await _body(scope, receive, received, PaymentPutRequest)
                return None if record is None else lambda db: payments.payment_put_reply(db, payment_id, record)
        return None


async def _body(scope: Scope, receive: Receive, received: list[Message], model: type[M]) -> M | None:
    """The JSON body validated as FastAPI does (`json.loads`, then the model); None when it fails."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":  # the client went away: the app hears it
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if not content or _header(scope, b"content-type") != b"application/json":
        return None
    try:
        return model.model_validate(json.loads(content))
    except ValueError:  # invalid JSON or a validation error: FastAPI reports it
        return None


def _plain_ids(query: bytes) -> str | None:
    """`ids` of a query string that is only `ids=…` with nothing to unescape; None otherwise.

    Parsing a query string costs more than listing two products; any other query goes to the app.
    """
    if not query.startswith(b"ids=") or any(char in query for char in b"&;%+"):
        return None
    return query[4:].decode("latin-1")


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case), as Starlette's `Headers.get` reads it."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return cast(bytes, value)
    return None


def _replaying(received: list[Message], receive: Receive) -> Receive:
    """`receive`, after handing out again the messages already read from it."""
    pending = deque(received)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay
