"""`open_resources(settings)`: everything long-lived, opened once per process and closed in reverse.

The API lifespan and the worker share it: the store (engine and `Database`), an aiohttp `ClientSession` per
outside system with the adapter that uses it, the signal that wakes an in-process outbox relay, and the
readiness checks `/readyz` runs. What is not here: use cases (built by each entrypoint from these parts).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.db_service import client as db_service_client
from payment_service.db_service.client import DbServiceClient
from payment_service.domain.errors import MessagingUnavailable
from payment_service.gateway import client as gateway_client
from payment_service.gateway.client import AuthorizeNetGateway
from payment_service.messaging.publisher import EventPublisher, create_producer
from payment_service.services.outbox_relay import OutboxRelay
from payment_service.settings import Settings
from payment_service.store.database import Database, create_engine
from payment_service.store.schema import upgrade_schema

ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    database: Database
    gateway_http: aiohttp.ClientSession
    gateway: AuthorizeNetGateway
    db_service_http: aiohttp.ClientSession
    db_service: DbServiceClient
    publisher: EventPublisher
    # Set after each commit that wrote outbox rows; an in-process relay waits on it, then clears it.
    outbox_written: asyncio.Event = field(default_factory=asyncio.Event)
    # name -> coroutine raising when the part is not usable; `/readyz` runs them all.
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)

    def notify_outbox_written(self) -> None:
        self.outbox_written.set()


@asynccontextmanager
async def open_resources(settings: Settings, *, create_schema: bool = True) -> AsyncIterator[Resources]:
    """Open the store, the HTTP clients and their adapters; close them in reverse when the block ends.

    Args:
        settings: the process's settings, built once by the entrypoint.
        create_schema: apply the store's migrations on start (`store/schema.py`).
    """
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.store)
        stack.push_async_callback(engine.dispose)
        if create_schema:
            await upgrade_schema(engine)
        database = Database(engine, max_connections=settings.store.max_connections)
        stack.push_async_callback(database.close)  # its kept connections, before the engine is disposed

        gateway_http = await stack.enter_async_context(gateway_client.build_http_client(settings.gateway))
        db_service_http = await stack.enter_async_context(db_service_client.build_http_client(settings.db_service))
        db_service = DbServiceClient(db_service_http, settings.db_service)
        # Started without requiring the broker: payments go on while Kafka is down (the outbox keeps
        # the events) and the first publish connects. Stopped first: flushes what is in flight.
        publisher = EventPublisher(create_producer(settings.kafka), settings.kafka)
        await publisher.start()
        stack.push_async_callback(publisher.stop)

        resources = Resources(
            settings=settings,
            engine=engine,
            database=database,
            gateway_http=gateway_http,
            gateway=AuthorizeNetGateway(gateway_http, settings.gateway),
            db_service_http=db_service_http,
            db_service=db_service,
            publisher=publisher,
        )

        async def check_store() -> None:
            async with database.reading() as conn:
                await conn.execute(text("SELECT 1"))

        resources.readiness_checks["store"] = check_store
        resources.readiness_checks["db_service"] = db_service.check
        resources.readiness_checks["kafka"] = publisher.check
        yield resources


@asynccontextmanager
async def running_outbox_relay(resources: Resources, *, name: str = "api-relay") -> AsyncIterator[OutboxRelay]:
    """Run an `OutboxRelay` woken by `outbox_written` for the duration of the block; cancelled at its end."""
    relay = OutboxRelay(
        resources.database,
        resources.publisher,
        resources.settings.relay,
        wakeup=resources.outbox_written,
        name=name,
    )
    task = asyncio.create_task(relay.run(), name=name)
    try:
        yield relay
    finally:
        # One last pass so that events of payments finished during shutdown leave now, not at the next start.
        task.cancel()
        await asyncio.wait({task})
        with contextlib.suppress(MessagingUnavailable, SQLAlchemyError, TimeoutError):
            async with asyncio.timeout(resources.settings.kafka.request_timeout_ms / 1000):
                await relay.publish_pending()
