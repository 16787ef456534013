"""Engine, metadata and column types shared by the store's tables.

SQLite (WAL) is the default and serves one host; PostgreSQL by URL serves several instances.
Write transactions on SQLite start with `BEGIN IMMEDIATE`, so two processes (API and worker) never
meet in a read-then-upgrade deadlock; the loser waits for the lock (on a thread, up to
`SQLITE_BUSY_TIMEOUT_MS`) instead of failing. SQLite connections are our own (`store/sqlite.py`):
statements run on the event loop, without aiosqlite's thread hop per cursor call.
"""

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from payment_service.settings import StoreSettings
from payment_service.store.sqlite import BEGIN_IMMEDIATE, CheckpointSchedule, connect_sqlite

READ_ONLY_OPTION = "payment_service_read_only"
SQLITE_BUSY_TIMEOUT_MS = 30_000

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which stores naive text) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(settings: StoreSettings) -> AsyncEngine:
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {"echo": settings.echo}
    if url.get_backend_name() == "sqlite":
        path = url.database or ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Our own SQLite connection (see `store/sqlite.py`) under SQLAlchemy's aiosqlite dialect.
        kwargs["async_creator"] = functools.partial(
            connect_sqlite, path, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, checkpoints=CheckpointSchedule()
        )
        # Enough connections that a burst does not open and close overflow ones (each open costs a thread hop).
        kwargs.update(pool_size=10, max_overflow=10)
        url = url.set(drivername="sqlite+aiosqlite")
    else:
        kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Readers (see `Database.reading`) begin deferred: in WAL mode they never wait for the writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY_OPTION) else BEGIN_IMMEDIATE)


async def create_tables(engine: AsyncEngine) -> None:
    """Create missing tables (create-on-start); the schema version lives in the `schema_version` table."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


class Database:
    """The engine, with write transactions taken one at a time per process on SQLite.

    SQLite has a single writer; connections that queue on its lock back off by sleeping (busy handler),
    which costs milliseconds under load. Queueing on an asyncio lock first costs nothing and keeps the
    writer busy. PostgreSQL needs no such lock.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._write_lock = asyncio.Lock() if is_sqlite(engine) else None
        self._reader = engine.execution_options(**{READ_ONLY_OPTION: True})

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back when it raises."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (SQLite WAL readers never wait for the writer)."""
        async with self._reader.connect() as conn:
            yield conn
