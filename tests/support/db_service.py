"""The reference db-service served for real, for any test that needs a db-service.

```python
with run_db_service(tmp_path) as db:
    db.seed()  # customers 42 and 43, products 1-4, unpaid orders 1001-1011
    customer = db.create_customer()
    product = db.create_product("Mug", "19.99")
    order = db.create_order(customer["id"], [(product["id"], 3)])
    db.stop()  # the db-service is down: connections are refused
    db.start()  # back, on the same port and the same SQLite file
    db.requests  # (method, raw path with query) of every request served, as it arrived on the wire
```
The helpers are synchronous (httpx) and may be called from async tests, since the server runs in
its own thread; they raise `httpx.HTTPStatusError` on an unexpected status.
"""

import asyncio
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from reference_db_service.api.app import create_app
from reference_db_service.cli import seed_database
from reference_db_service.seed import SeededRecord
from reference_db_service.settings import ReferenceDbSettings
from tests.support.databases import database_url
from tests.support.servers import bind_free_socket, serve_app

_TIMEOUT_S = 10.0
_emails = itertools.count(1)


class DbServiceHandle:
    """A running reference db-service on a fixed port and SQLite file; see the module docstring."""

    def __init__(self, settings: ReferenceDbSettings, port: int, token: str | None) -> None:
        self.settings = settings
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.token = token
        self._server: ExitStack | None = None
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []

    @property
    def is_running(self) -> bool:
        return self._server is not None

    @property
    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}

    def start(self) -> None:
        """Serve a fresh app on the same port and database file (no-op when running)."""
        with self._lock:
            if self._server is not None:
                return
            stack = ExitStack()
            stack.enter_context(serve_app(self._logging_requests(create_app(self.settings)), port=self.port))
            self._server = stack

    def _logging_requests(self, app: ASGIApp) -> ASGIApp:
        async def logged(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                query = scope["query_string"].decode("latin-1")
                path = scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
                self.requests.append((scope["method"], path))
            await app(scope, receive, send)

        return logged

    def stop(self) -> None:
        """Shut the server down; its port then refuses connections until `start()`."""
        with self._lock:
            server, self._server = self._server, None
            http, self._http = self._http, None
        if http is not None:
            http.close()
        if server is not None:
            server.close()

    def client(self) -> httpx.Client:
        """A new client for this service (with the token, if any); the caller closes it."""
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=_TIMEOUT_S)

    @property
    def _client(self) -> httpx.Client:
        # One client for the helpers: building one costs an SSL context (tens of milliseconds).
        with self._lock:
            if self._http is None:
                self._http = self.client()
            return self._http

    def seed(self) -> list[SeededRecord]:
        """Run the same seed as `reference-db-service seed` against this service's database."""
        # In a thread with its own loop, so that async tests (whose loop is running) can call it.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, seed_database(self.settings)).result()

    def create_customer(self, **overrides: Any) -> dict[str, Any]:
        n = next(_emails)
        body: dict[str, Any] = {
            "email": f"customer{n}@example.com",
            "first_name": "Test",
            "last_name": f"Customer{n}",
            "phone": "+1-555-0100",
            "address": {
                "line1": "1 Test Street",
                "city": "Springfield",
                "state": "IL",
                "zip": "62701",
                "country": "US",
            },
        }
        return self._post("/customers", body | overrides)

    def create_product(self, name: str, price: str, **extra: Any) -> dict[str, Any]:
        return self._post("/products", {"name": name, "price": price} | extra)

    def create_order(self, customer_id: str, items: list[tuple[str, int]], **extra: Any) -> dict[str, Any]:
        body = {
            "customer_id": customer_id,
            "items": [{"product_id": product_id, "quantity": quantity} for product_id, quantity in items],
        }
        return self._post("/orders", body | extra)

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/orders/{order_id}")

    def get_payment(self, payment_id: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/payments/{payment_id}")

    def list_payments(self, order_id: str) -> list[dict[str, Any]]:
        response = self._client.get("/payments", params={"order_id": order_id})
        response.raise_for_status()
        payments: list[dict[str, Any]] = response.json()
        return payments

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(path, json=body)
        response.raise_for_status()
        created: dict[str, Any] = response.json()
        return created

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        response = self._client.get(path)
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found


@contextmanager
def run_db_service(tmp_path: Path, *, token: str | None = None) -> Iterator[DbServiceHandle]:
    """Serve a fresh reference db-service on a new SQLite file under `tmp_path`; stop it on exit.

    With `PAYMENTS_TEST_POSTGRES_URL` set, on a new PostgreSQL database instead (`tests/support/databases.py`).
    """
    settings = ReferenceDbSettings(
        database_url=database_url(tmp_path / "reference-db" / "db.sqlite3"),
        token=None if token is None else SecretStr(token),
    )
    # Reserve a free port number; the server binds it again (SO_REUSEADDR) on every start().
    probe = bind_free_socket()
    port: int = probe.getsockname()[1]
    probe.close()
    handle = DbServiceHandle(settings, port, token)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
