"""Store-level fixtures: a `Database` whose PostgreSQL connections log every query they send."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.store.database import Database
from tests.support.databases import on_postgres


class QueryLog:
    """Every query asyncpg sends on the engine's connections (BEGIN, COMMIT and ROLLBACK included)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def __call__(self, record: Any) -> None:
        self.queries.append(" ".join(record.query.split()).upper())

    async def taken(self) -> list[str]:
        await asyncio.sleep(0)  # asyncpg hands records to loggers with call_soon
        taken, self.queries = self.queries, []
        return taken


@pytest.fixture
async def logged(engine: AsyncEngine) -> AsyncIterator[tuple[Database, QueryLog]]:
    """A `Database` on `engine` and the log of its queries (on SQLite, which has no round trips, empty)."""
    log = QueryLog()
    if on_postgres():

        @event.listens_for(engine.sync_engine, "checkout")
        def on_checkout(dbapi_connection: Any, *_: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(log)

    database = Database(engine)
    yield database, log
    await database.close()
