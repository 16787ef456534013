"""The hot path answers exactly as the FastAPI routes do, and leaves to them what it does not fully handle.

The same requests, in the same order, go to two reference db-services on identically seeded
databases: the app as served, and the app without `HotPathMiddleware`. Every answer must be the same
(status, the headers a client reads, body), success and error alike.
"""

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_db_service.api.app import create_app
from reference_db_service.api.hot_path import HotPathMiddleware
from reference_db_service.cli import seed_database
from reference_db_service.settings import ReferenceDbSettings
from tests.integration.reference_db.factories import payment_body
from tests.support.databases import database_url
from tests.support.servers import serve_app

TOKEN = "hot-path-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}
# Headers a client reads (`date` and `server` are uvicorn's; the body is compared itself).
COMPARED_HEADERS = ("content-type", "location", "www-authenticate", "retry-after")
# Order timestamps are each database's own clock.
CLOCK_FIELDS = ("created_at", "updated_at")


@dataclass
class PassedOn:
    """The requests that reached the app behind the hot path: those it did not answer itself."""

    requests: list[tuple[str, str]] = field(default_factory=list)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def passed_on(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.requests.append((scope["method"], scope["raw_path"].decode()))
            await app(scope, receive, send)

        return passed_on


@contextmanager
def served(tmp_path: Path, *, passed_on: PassedOn | None) -> Iterator[httpx.Client]:
    """The seeded app as served, its hot path handing on to `passed_on`; None: the app without its hot path."""
    settings = ReferenceDbSettings(database_url=database_url(tmp_path / "db.sqlite3"), token=SecretStr(TOKEN))
    asyncio.run(seed_database(settings))
    app = create_app(settings)
    outermost: object = app.user_middleware[0].cls
    assert outermost is HotPathMiddleware
    if passed_on is None:
        del app.user_middleware[0]
    else:
        app.user_middleware.insert(1, Middleware(passed_on.middleware))
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _without_clock(body: Any) -> Any:
    if isinstance(body, dict):
        return {key: _without_clock(value) for key, value in body.items() if key not in CLOCK_FIELDS}
    if isinstance(body, list):
        return [_without_clock(item) for item in body]
    return body


def _answer(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {name: response.headers[name] for name in COMPARED_HEADERS if name in response.headers}
    body = _without_clock(response.json()) if response.content else None
    return response.status_code, headers, body


def _payment(order_id: str, *, customer_id: str = "42", **overrides: Any) -> bytes:
    return json.dumps(payment_body(order_id, customer_id, **overrides)).encode()


def _update(status: str, payment_id: str) -> bytes:
    return json.dumps({"payment_status": status, "payment_id": payment_id}).encode()


ANSWERED, PASSED_ON = "answered by the hot path", "passed on to the app"
# (method, path, body, headers, who answers behind the hot path): run in this order against both services.
REQUESTS: list[tuple[str, str, bytes | None, dict[str, str], str]] = [
    # Reads the hot path answers.
    ("GET", "/orders/1001", None, AUTH, ANSWERED),
    ("GET", "/customers/42", None, AUTH, ANSWERED),
    ("GET", "/products?ids=2,1", None, AUTH, ANSWERED),
    ("GET", "/products?ids=1,,3", None, AUTH, ANSWERED),
    ("GET", "/products?ids=999", None, AUTH, ANSWERED),
    ("GET", "/orders/999999", None, AUTH, ANSWERED),
    ("GET", "/orders/01001", None, AUTH, ANSWERED),
    ("GET", "/orders/abc", None, AUTH, ANSWERED),
    ("GET", "/orders/99999999999", None, AUTH, ANSWERED),
    ("GET", "/customers/7", None, AUTH, ANSWERED),
    ("GET", "/products?ids=", None, AUTH, ANSWERED),
    ("GET", "/products?ids=x", None, AUTH, ANSWERED),
    ("GET", "/products?ids=" + ",".join(str(n) for n in range(1, 102)), None, AUTH, ANSWERED),
    # Reads it passes on.
    ("GET", "/products", None, AUTH, PASSED_ON),
    ("GET", "/products?ids=1&ids=2", None, AUTH, PASSED_ON),
    ("GET", "/products?ids=1%2C2", None, AUTH, PASSED_ON),
    ("GET", "/orders/1001%2Fcancel", None, AUTH, PASSED_ON),
    ("GET", "/orders/1001", None, {}, PASSED_ON),
    ("GET", "/orders/1001", None, {"Authorization": "Bearer wrong"}, PASSED_ON),
    ("HEAD", "/orders/1001", None, AUTH, PASSED_ON),
    # Order updates.
    ("PATCH", "/orders/1002", _update("approved", "pay_a"), AUTH | JSON, ANSWERED),
    ("PATCH", "/orders/1002", _update("approved", "pay_a"), AUTH | JSON, ANSWERED),
    ("PATCH", "/orders/1002", _update("declined", "pay_a"), AUTH | JSON, ANSWERED),
    ("PATCH", "/orders/1002", _update("approved", "pay_b"), AUTH | JSON, ANSWERED),
    ("PATCH", "/orders/999999", _update("approved", "pay_c"), AUTH | JSON, ANSWERED),
    ("PATCH", "/orders/abc", _update("approved", "pay_c"), AUTH | JSON, ANSWERED),
    ("POST", "/orders/1003/cancel", None, AUTH, PASSED_ON),
    ("PATCH", "/orders/1003", _update("approved", "pay_d"), AUTH | JSON, ANSWERED),
    ("PATCH", "/orders/1004", b'{"payment_status": "approved"', AUTH | JSON, PASSED_ON),
    ("PATCH", "/orders/1004", b"", AUTH | JSON, PASSED_ON),
    ("PATCH", "/orders/1004", _update("approved", "pay e"), AUTH | JSON, PASSED_ON),
    ("PATCH", "/orders/1004", _update("settled", "pay_e"), AUTH | JSON, PASSED_ON),
    ("PATCH", "/orders/1004", b'{"payment_status": "approved", "payment_id": "pay_e", "x": 1}', AUTH | JSON, PASSED_ON),
    ("PATCH", "/orders/1004", _update("approved", "pay_e"), AUTH | {"Content-Type": "text/plain"}, PASSED_ON),
    ("PATCH", "/orders/1004", b'{"payment_status": "approved"', {"Content-Type": "application/json"}, PASSED_ON),
    ("PATCH", "/orders/1004", _update("approved", "pay_e"), JSON, PASSED_ON),
    (
        "PATCH",
        "/orders/1004",
        _update("approved", "pay_e"),
        AUTH | {"Content-Type": "application/json; charset=utf-8"},
        PASSED_ON,
    ),
    # Payment records.
    ("PUT", "/payments/pay_f", _payment("1005"), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay_f", _payment("1005"), AUTH | JSON, ANSWERED),
    (
        "PUT",
        "/payments/pay_f",
        _payment("1005", version=2, status="refunded", refunded_amount="59.97"),
        AUTH | JSON,
        ANSWERED,
    ),
    ("PUT", "/payments/pay_f", _payment("1005", version=1, status="declined"), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay_f", _payment("1006", version=3), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay_g", _payment("999999"), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay_g", _payment("1006", id="pay_h"), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay*g", _payment("1006"), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay_g", _payment("1006", amount="59.975"), AUTH | JSON, PASSED_ON),
    (
        "PUT",
        "/payments/pay_g",
        _payment("1006", gateway={"account_number": "4111111111111111"}),
        AUTH | JSON,
        PASSED_ON,
    ),
    ("PUT", "/payments/pay_g", _payment("1006", version=True), AUTH | JSON, PASSED_ON),
    ("PUT", "/payments/pay_g", _payment("1006", customer_id="43"), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay_g", _payment("1003"), AUTH | JSON, ANSWERED),
    ("PUT", "/payments/pay_g", _payment("1006", unknown_field="ignored"), AUTH | JSON, ANSWERED),
    ("GET", "/payments/pay_g", None, AUTH, PASSED_ON),
    ("GET", "/orders/1006", None, AUTH, ANSWERED),
]


class TestHotPath:
    def test_it_answers_every_request_as_the_routes_do_and_passes_on_what_it_cannot_answer(
        self, tmp_path: Path
    ) -> None:
        passed_on = PassedOn()
        with (
            served(tmp_path / "hot", passed_on=passed_on) as hot,
            served(tmp_path / "routes", passed_on=None) as routes,
        ):
            for method, path, body, headers, who in REQUESTS:
                expected = _answer(routes.request(method, path, content=body, headers=headers))
                before = len(passed_on.requests)
                actual = _answer(hot.request(method, path, content=body, headers=headers))
                assert actual == expected, (method, path, body)
                assert (PASSED_ON if len(passed_on.requests) > before else ANSWERED) == who, (method, path, body)
