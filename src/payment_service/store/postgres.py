"""The asyncpg connection under the store's PostgreSQL engine: transactions and hot statements on the driver.

Through SQLAlchemy a payment on PostgreSQL cost twice the API CPU it cost on SQLite, and about three
commits and six rollbacks on the server: every statement went through an execution context, a greenlet
switch and a result object; every pool check-out pinged (a transaction of its own); every read began
a transaction only to roll it back. Here, as on SQLite (`store/sqlite.py`):
- `Database.transaction` sends BEGIN at once, on the driver; `Statement`s (`store/statements.py`) run
  on the asyncpg connection, whose statement cache prepares each SQL text once per connection (later
  runs are Bind/Execute only). A statement run through SQLAlchemy inside joins the same transaction,
  because it is begun on SQLAlchemy's asyncpg adapter, which SQLAlchemy then commits or rolls back.
- `Database.reading` and `Database.autocommit` connections are in autocommit: one round trip per
  statement, no BEGIN and no ROLLBACK (an `executemany` is one implicit transaction, atomic).
- Connections are kept by `PostgresConnections`, not checked out of SQLAlchemy's pool per use, and
  never pinged: one the server dropped fails its use and is thrown away.
- The pay flow's two write transactions are one statement each (`store/pay_writes.py`), and writes
  of many rows at once are one statement with an array parameter (`= ANY($1)`), not an `executemany`
  (one Execute per row on the server).

This leans on three attributes of SQLAlchemy's asyncpg adapter (`_connection`, `_transaction`,
`_start_transaction`), stable through SQLAlchemy 2.0 and 2.1 (the range `pyproject.toml` allows);
`tests/integration/store/test_postgres_path.py` checks them on a real server.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Connections one process holds open at most, unless told (`PAYMENTS_STORE__MAX_CONNECTIONS`); each is a
# server backend: size the server's max_connections for replicas x this.
MAX_CONNECTIONS: Final = 5

# What asyncpg raises for a failed statement, a dropped connection or a misuse of the connection.
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PostgresDriver:
    """SQLAlchemy's asyncpg adapter of one pooled connection, and the asyncpg connection under it."""

    __slots__ = ("_adapter", "raw")

    def __init__(self, adapter: AsyncAdapt_asyncpg_connection) -> None:
        self._adapter = adapter
        self.raw: Any = adapter._connection  # an asyncpg.Connection

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the driver (begun here or by SQLAlchemy)."""
        return self._adapter._transaction is not None

    @property
    def autocommit(self) -> bool:
        return bool(self._adapter.autocommit)

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._adapter.autocommit = value

    async def begin(self) -> None:
        """BEGIN now, on the adapter, so statements through SQLAlchemy join this transaction."""
        try:
            await self._adapter._start_transaction()  # type: ignore[no-untyped-call]
        except self._adapter.dbapi.Error as error:
            raise self._translated(error, "BEGIN") from error

    async def end(self, *, commit: bool) -> None:
        """COMMIT (or ROLLBACK) the transaction open on the driver; nothing when none is."""
        transaction = self._adapter._transaction
        if transaction is None:
            return
        try:
            # The adapter forgets the transaction whether or not the call succeeded, as its own commit does.
            await self._adapter._call_and_discard(transaction.commit if commit else transaction.rollback)
        except DRIVER_ERRORS as error:
            raise self.error(error, "COMMIT" if commit else "ROLLBACK") from error

    def is_closed(self) -> bool:
        return bool(self.raw.is_closed())

    def terminate(self) -> None:
        """Close at once, without waiting for the server (a connection in an unknown state)."""
        self.raw.terminate()

    def error(self, error: BaseException, sql: str, params: Any = None) -> exc.DBAPIError:
        """`error` (asyncpg's) as SQLAlchemy raises it (`IntegrityError`, `OperationalError` …)."""
        try:
            self._adapter._handle_exception(error)  # type: ignore[arg-type]  # always raises
        except self._adapter.dbapi.Error as translated:
            return self._translated(translated, sql, params)
        raise AssertionError("unreachable")  # pragma: no cover

    def _translated(self, error: Exception, sql: str, params: Any = None) -> exc.DBAPIError:
        translated = exc.DBAPIError.instance(sql, params, error, self._adapter.dbapi.Error)
        assert isinstance(translated, exc.DBAPIError)  # noqa: S101 - a DB-API error always maps to one
        return translated


class PostgresConnections:
    """One process's connections, detached from SQLAlchemy's pool and kept open between uses.

    A pool check-out and check-in through SQLAlchemy (greenlet switches, events, resetting the
    isolation level, a rollback on return) cost more API CPU than the statements of a transaction;
    here a use is a list pop and push. Connections are opened on demand up to `limit` and all kept
    (closing and reopening them would cost the server a backend start each); one found closed or
    left in an unknown state is dropped.
    """

    def __init__(self, engine: AsyncEngine, *, limit: int = MAX_CONNECTIONS) -> None:
        self._engine = engine
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[tuple[AsyncConnection, PostgresDriver]] = []
        # Detached, they are not the pool's to close: disposing of the engine closes them too.
        event.listen(engine.sync_engine, "engine_disposed", self._terminate_idle)

    @asynccontextmanager
    async def use(self, *, autocommit: bool) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction (BEGIN now, COMMIT at the end, ROLLBACK if the block raises) or in autocommit.

        In autocommit each statement (an `executemany` too) is a transaction of its own, with no BEGIN.
        """
        async with self._slots:
            conn, driver = self._idle.pop() if self._idle else await self._open()
            try:
                driver.autocommit = autocommit
                if not autocommit:
                    await driver.begin()
                yield conn
            except BaseException:
                with contextlib.suppress(Exception):  # the block's own error is the one to raise
                    await self._finish(conn, driver, commit=False)
                raise
            await self._finish(conn, driver, commit=True)

    async def _open(self) -> tuple[AsyncConnection, PostgresDriver]:
        conn = await self._engine.connect()
        try:
            (await conn.get_raw_connection()).detach()
            driver = postgres_driver(conn.sync_connection) if conn.sync_connection is not None else None
            if driver is None:
                raise TypeError("the store's PostgreSQL engine must use the asyncpg driver")
        except BaseException:
            await conn.close()
            raise
        return conn, driver

    async def _finish(self, conn: AsyncConnection, driver: PostgresDriver, *, commit: bool) -> None:
        """End what is open on `conn` and keep it; drop it when that fails or it is closed."""
        try:
            if conn.in_transaction():  # a statement through SQLAlchemy joined: SQLAlchemy ends it and its state
                await (conn.commit() if commit else conn.rollback())
            else:
                await driver.end(commit=commit)
        except BaseException:
            driver.terminate()
            raise
        if conn.invalidated:  # SQLAlchemy gave it up (a statement through it was cancelled or lost the server)
            driver.terminate()
        elif not driver.is_closed():
            self._idle.append((conn, driver))

    def _terminate_idle(self, *_: Any) -> None:
        idle, self._idle = self._idle, []
        for _conn, driver in idle:
            driver.terminate()

    async def close(self) -> None:
        """Close the idle connections (those in use are closed when their use ends and they are dropped)."""
        idle, self._idle = self._idle, []
        for conn, driver in idle:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - closing: a connection already gone is closed enough
                driver.terminate()


def postgres_driver(conn: Connection) -> PostgresDriver | None:
    """The asyncpg driver under `conn`, or None when it is another driver's."""
    adapter: Any = conn.connection.dbapi_connection
    return PostgresDriver(adapter) if isinstance(adapter, AsyncAdapt_asyncpg_connection) else None
