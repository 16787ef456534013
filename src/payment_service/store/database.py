"""Engine, metadata and column types shared by the store's tables.

SQLite (WAL) is the default and serves one host; PostgreSQL by URL serves several instances.
Write transactions on SQLite start with `BEGIN IMMEDIATE`, so two processes (API and worker) never
meet in a read-then-upgrade deadlock; the loser waits for the lock (on a thread, up to
`SQLITE_BUSY_TIMEOUT_MS`) instead of failing. SQLite connections are our own (`store/sqlite.py`):
statements run on the event loop, without aiosqlite's thread hop per cursor call.

On PostgreSQL transactions begin and end on asyncpg (`store/postgres.py`), reads run in autocommit,
and the connections, kept open between uses, are not pinged before one (`pool_pre_ping` was a
transaction of its own per check-out): a connection the server dropped fails the use it was taken
for and is thrown away; the caller's retry, like after any database error, gets a fresh one.
"""

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from payment_service.settings import StoreSettings
from payment_service.store.postgres import PostgresConnections
from payment_service.store.sqlite import BEGIN_IMMEDIATE, CheckpointSchedule, SqliteConnection, connect_sqlite
from payment_service.store.statements import driver_error, sqlite_driver

READ_ONLY_OPTION = "payment_service_read_only"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MAX_IDLE_READERS = 8

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
        # `Database` keeps its connections itself (`store/postgres.py`); the pool only opens them.
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Any) -> None:
        # Inside a transaction `Database` began on the driver, SQLAlchemy joins it rather than begin another.
        driver = sqlite_driver(conn)
        if driver is not None and driver.raw.in_transaction:
            return
        # Readers (see `Database.reading`) begin deferred: in WAL mode they never wait for the writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY_OPTION) else BEGIN_IMMEDIATE)


class Database:
    """The engine, with write transactions taken one at a time per process on SQLite.

    SQLite has a single writer; connections that queue on its lock back off by sleeping (busy handler),
    which costs milliseconds under load. Queueing on an asyncio lock first costs nothing and keeps the
    writer busy. PostgreSQL needs no such lock.

    On PostgreSQL a transaction is BEGIN, its statements and COMMIT on the driver; a read is its
    statements alone, in autocommit (see `store/postgres.py`).

    On SQLite the connections stay open between uses: one for writes (writes are serialised anyway)
    and a few idle readers. A pool check-out and check-in, a SQLAlchemy begin and commit cost ~180 µs of
    CPU per transaction, ten times the statements of a payment on the driver (`store/statements.py`).
    They are taken from the engine's pool once and detached from it, so `close()` (or, failing that,
    the garbage collector) closes them; the engine's `dispose()` does not. Transactions begin and
    commit on the driver; a statement run through SQLAlchemy inside one joins it (see `on_begin`).
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = is_sqlite(engine)
        self.is_postgres = not self._sqlite
        self._write_lock = asyncio.Lock() if self._sqlite else None
        self._reader = engine.execution_options(**{READ_ONLY_OPTION: True})
        self._postgres = None if self._sqlite else PostgresConnections(engine)
        self._writer: AsyncConnection | None = None
        self._idle_readers: list[AsyncConnection] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends, rolled back when it raises."""
        if self._postgres is not None:
            async with self._postgres.use(autocommit=False) as conn:
                yield conn
            return
        assert self._write_lock is not None  # noqa: S101 - SQLite has one
        async with self._write_lock:
            conn = self._writer if self._writer is not None else await _open_detached(self.engine)
            self._writer = None
            driver = _driver(conn)
            try:
                await driver.begin_immediate()
            except sqlite3.Error as error:
                # Dropped, not kept: a cancelled wait for the lock may still be running on a thread.
                raise driver_error(error, BEGIN_IMMEDIATE) from error
            try:
                yield conn
            except BaseException:
                await _end(conn, driver, commit=False)
                self._writer = conn
                raise
            await _end(conn, driver, commit=True)
            self._writer = conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (SQLite WAL readers never wait for the writer; PostgreSQL: autocommit)."""
        if not self._sqlite:
            async with self.autocommit() as conn:
                yield conn
            return
        conn = self._idle_readers.pop() if self._idle_readers else await _open_detached(self._reader)
        try:
            yield conn
        except BaseException:
            await _end(conn, _driver(conn), commit=False)
            self._keep_reader(conn)
            raise
        await _end(conn, _driver(conn), commit=False)
        self._keep_reader(conn)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection for writes that are atomic alone (one statement, one `execute_many`).

        PostgreSQL runs each without BEGIN and COMMIT (one round trip); SQLite in a write transaction.
        """
        if self._postgres is None:
            async with self.transaction() as conn:
                yield conn
            return
        async with self._postgres.use(autocommit=True) as conn:
            yield conn

    def _keep_reader(self, conn: AsyncConnection) -> None:
        if len(self._idle_readers) < MAX_IDLE_READERS:
            self._idle_readers.append(conn)
        # Else dropped: detached from the pool, its SQLite connection closes when it is collected.

    async def close(self) -> None:
        """Close the connections kept open between uses; the engine stays usable."""
        held = [*self._idle_readers, *([self._writer] if self._writer is not None else [])]
        self._idle_readers.clear()
        self._writer = None
        for conn in held:
            await conn.close()
        if self._postgres is not None:
            await self._postgres.close()


async def _open_detached(engine: AsyncEngine) -> AsyncConnection:
    conn = await engine.connect()
    try:
        (await conn.get_raw_connection()).detach()
        _driver(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


def _driver(conn: AsyncConnection) -> SqliteConnection:
    driver = sqlite_driver(conn.sync_connection) if conn.sync_connection is not None else None
    if driver is None:
        raise TypeError("the store's SQLite engine must be built by create_engine")
    return driver


async def _end(conn: AsyncConnection, driver: SqliteConnection, *, commit: bool) -> None:
    """Commit or roll back the transaction open on `conn`, whoever began it.

    Raises:
        DBAPIError: the commit failed; the transaction is rolled back.
    """
    try:
        if conn.in_transaction():  # SQLAlchemy joined (or began) it: it ends it and resets its own state
            await (conn.commit() if commit else conn.rollback())
        elif commit:
            await driver.commit()
        else:
            await driver.rollback()
    except BaseException as error:
        # Never leave the write lock held by a connection that is kept for later.
        if driver.raw.in_transaction:
            driver.raw.rollback()
        if isinstance(error, sqlite3.Error):
            raise driver_error(error, "COMMIT" if commit else "ROLLBACK") from error
        raise
