"""Shared fixtures for integration tests: real simulator, real reference db-service, a fresh store.

* `simulator` / `db_service`: one of each per test module (each test makes its own customers and
  orders, so tests never see each other's data); `simulator` faults are cleared after every test.
* `service_settings`: `Settings` pointing at both, with a fresh SQLite store in the test's `tmp_path`
  (a fresh PostgreSQL database with `PAYMENTS_TEST_POSTGRES_URL`: `tests/support/databases.py`) and
  fast retries.
* `api_client`: an `httpx.AsyncClient` over `httpx.ASGITransport` on `create_app(service_settings)`,
  its lifespan entered (and its state handed to every request, as uvicorn does).
* `shop`: typed factories for customers, products and orders on the db-service, and tokens.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Receive, Scope, Send

from payment_service.api.app import create_app
from payment_service.api.auth import mint_token
from payment_service.resources import Resources, open_resources
from payment_service.settings import (
    ApiSettings,
    DbServiceSettings,
    GatewaySettings,
    KafkaSettings,
    Settings,
    StoreSettings,
)
from payment_service.store.database import create_engine, metadata
from payment_service.store.schema import upgrade_schema
from tests.support.databases import database_url, on_postgres, query_rows
from tests.support.db_service import DbServiceHandle, run_db_service
from tests.support.simulator import SimulatorHandle, run_simulator

VISA = "4111111111111111"
MASTERCARD = "5424000000000015"
CLOSED_KAFKA_PORT = "127.0.0.1:1"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A fresh, migrated store (SQLite file, or a PostgreSQL database of its own) for store-level tests."""
    engine = create_engine(StoreSettings(database_url=database_url(tmp_path / "store.sqlite3")))
    await upgrade_schema(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator() as handle:
        yield handle


@pytest.fixture(autouse=True)
def _clear_simulator_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "simulator" in request.fixturenames:
        handle: SimulatorHandle = request.getfixturevalue("simulator")
        handle.clear_faults()


@pytest.fixture(scope="module")
def db_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbServiceHandle]:
    with run_db_service(tmp_path_factory.mktemp("db-service")) as handle:
        yield handle


def build_settings(tmp_path: Path, simulator: SimulatorHandle, db_service: DbServiceHandle, **api: Any) -> Settings:
    return Settings(
        api=ApiSettings(**api),
        gateway=GatewaySettings(
            endpoint=simulator.api_url,
            login_id=simulator.login_id,
            transaction_key=SecretStr(simulator.transaction_key),
            signature_key=SecretStr(simulator.signature_key),
            connect_timeout_s=2.0,
            read_timeout_s=2.0,
        ),
        db_service=DbServiceSettings(
            base_url=db_service.base_url,
            token=SecretStr(db_service.token) if db_service.token else None,
            connect_timeout_s=1.0,
            read_timeout_s=3.0,
            max_retries=2,
            backoff_ms=10,
        ),
        store=StoreSettings(database_url=database_url(tmp_path / "store" / "payments.sqlite3")),
        # Pay-flow tests read the outbox, not Kafka: a closed port keeps their events out of any
        # broker a developer runs on the default port. Event tests give the session broker instead.
        kafka=KafkaSettings(bootstrap_servers=CLOSED_KAFKA_PORT),
    )


@pytest.fixture
def service_settings(tmp_path: Path, simulator: SimulatorHandle, db_service: DbServiceHandle) -> Settings:
    return build_settings(tmp_path, simulator, db_service)


@pytest.fixture
async def resources(service_settings: Settings) -> AsyncIterator[Resources]:
    """The service's long-lived objects (store, gateway, db-service client, producer) over `service_settings`."""
    async with open_resources(service_settings) as opened:
        yield opened


def short_read(settings: Settings) -> Settings:
    """`settings` with a 0.3 s gateway read timeout: a charge the simulator stalls after commit ends `unknown`."""
    return settings.model_copy(update={"gateway": settings.gateway.model_copy(update={"read_timeout_s": 0.3})})


def store_path(settings: Settings) -> Path:
    return Path(settings.store.database_url.removeprefix("sqlite+aiosqlite:///"))


def store_rows(settings: Settings, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of `query` (with `?` placeholders) on the service's store, SQLite or PostgreSQL."""
    return query_rows(settings.store.database_url, query, *params)


def stored_bytes(settings: Settings) -> bytes:
    """Everything the store holds: its SQLite files (WAL included), or every row of every table on PostgreSQL."""
    if not on_postgres():
        return b"".join(p.read_bytes() for p in store_path(settings).parent.iterdir())
    values = [
        value
        for table in metadata.sorted_tables
        for row in store_rows(settings, f"SELECT * FROM {table.name}")  # noqa: S608 - our own table names
        for value in row
    ]
    return b"\n".join(value if isinstance(value, bytes) else str(value).encode() for value in values)


@asynccontextmanager
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client calling `app` in-process, with the app's lifespan entered around it."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # uvicorn hands every request a shallow copy of the lifespan state; ASGITransport does not.
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://payment-service.test") as client:
            yield client


@pytest.fixture
async def api_client(service_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(service_settings)) as client:
        yield client


@dataclass(frozen=True)
class Shop:
    """Typed factories over the db-service, plus tokens for the service's settings."""

    db: DbServiceHandle
    settings: Settings

    def customer(self) -> str:
        return str(self.db.create_customer()["id"])

    def order(self, customer_id: str, *, price: str = "19.99", quantity: int = 3, **extra: Any) -> dict[str, Any]:
        product = self.db.create_product("Blue mug", price)
        return self.db.create_order(customer_id, [(str(product["id"]), quantity)], **extra)

    def token(self, customer_id: str, *, roles: tuple[str, ...] = (), ttl_s: int = 600) -> str:
        return mint_token(self.settings.auth, customer_id=customer_id, roles=roles, ttl_s=ttl_s)

    def auth(self, customer_id: str, *, key: str | None = None, roles: tuple[str, ...] = ()) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(customer_id, roles=roles)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers


@pytest.fixture
def shop(db_service: DbServiceHandle, service_settings: Settings) -> Shop:
    return Shop(db_service, service_settings)


def card_body(order_id: str, *, number: str = VISA, cvv: str = "123", **extra: Any) -> dict[str, Any]:
    """The preferred body shape with a raw card."""
    return {"order_id": order_id, "payment": {"card": {"number": number, "expiration": "2031-12", "cvv": cvv}}, **extra}
