"""The database handle: engines, SQLite tuning, the single-writer rule, and where transactions run.

A transaction is a plain function of a SQLAlchemy `Connection`, run whole by `Database.read` or
`Database.write`:
- SQLite (the default): with the standard `sqlite3` driver, on the event loop. A
  `sqlite+aiosqlite://` URL is accepted and means the same file. A WAL read or a short write of a
  local file takes microseconds, while handing it to a thread and waking the loop again cost more
  than the work (and every thread holding the GIL slows the loop down). Reads run on one connection
  in their own transaction, so each sees everything committed before it began. Writes go through
  `SqliteWriter`, which commits queued writes together with `BEGIN IMMEDIATE` (the write lock is taken
  up front, so a transaction never fails half-way with `database is locked`) and moves to a thread
  only what could block the loop: waiting for another process's write lock (e.g.
  `reference-db-service seed`) and checkpoints. Hot statements run on the driver directly
  (`statements.Statement`).
- PostgreSQL (`postgresql+asyncpg://`): on the event loop through `AsyncConnection.run_sync`, with row
  locks (`SELECT … FOR UPDATE`) serialising writers of one order.
"""

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from reference_db_service.errors import DatabaseBusy
from reference_db_service.settings import ReferenceDbSettings
from reference_db_service.store.tables import metadata
from reference_db_service.store.writer import SqliteWriter

P = ParamSpec("P")
T = TypeVar("T")
Transaction = Callable[Concatenate[Connection, P], T]


class Database(ABC):
    """Runs transactions; see the module docstring for how, per backend."""

    @abstractmethod
    async def read(self, transaction: "Transaction[P, T]", *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `transaction` in a read transaction (one consistent snapshot)."""

    @abstractmethod
    async def write(self, transaction: "Transaction[P, T]", *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `transaction` in a write transaction: committed on return, rolled back on error.

        Raises:
            DatabaseBusy: another process kept SQLite's write lock past the busy timeout.
        """

    @abstractmethod
    async def close(self) -> None: ...

    @staticmethod
    def open(settings: ReferenceDbSettings) -> "Database":
        """Create the engines for the configured URL (no connection is made yet)."""
        url = make_url(settings.database_url)
        if url.get_backend_name() == "sqlite":
            return SqliteDatabase(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        return AsyncDatabase(create_async_engine(url, pool_pre_ping=True))

    async def create_schema(self) -> None:
        """Create missing tables (idempotent; safe with several processes on one database)."""
        await self.write(_create_all)


class AsyncDatabase(Database):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, transaction: "Transaction[P, T]", *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._engine.connect() as conn:
            result = await conn.run_sync(transaction, *args, **kwargs)
            await conn.rollback()
            return result

    async def write(self, transaction: "Transaction[P, T]", *args: P.args, **kwargs: P.kwargs) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(transaction, *args, **kwargs)

    async def close(self) -> None:
        await self._engine.dispose()


class SqliteDatabase(Database):
    def __init__(self, url: URL, *, busy_timeout_ms: int) -> None:
        url = url.set(drivername="sqlite+pysqlite")
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # Connections move between the executor's threads, never used by two at once.
        threads_ok = {"check_same_thread": False}
        loop_writer = create_engine(url, pool_size=1, max_overflow=0, connect_args=threads_ok)
        thread_writer = create_engine(url, pool_size=1, max_overflow=0, connect_args=threads_ok)
        self._reader = create_engine(url, pool_size=1, max_overflow=0, connect_args=threads_ok)
        # The loop's writer never waits for the lock nor checkpoints: `SqliteWriter` hands both to
        # its thread.
        _tune_sqlite(loop_writer, begin="BEGIN IMMEDIATE", busy_timeout_ms=0, autocheckpoint=False)
        _tune_sqlite(thread_writer, begin="BEGIN IMMEDIATE", busy_timeout_ms=busy_timeout_ms)
        _tune_sqlite(self._reader, begin=None, busy_timeout_ms=busy_timeout_ms)  # `read` begins on the driver
        # One writer: SQLite has one, so writes queue here rather than on a file lock.
        self._write_queue = SqliteWriter(loop_writer=loop_writer, thread_writer=thread_writer)
        self._read_conn: Connection | None = None

    async def read(self, transaction: "Transaction[P, T]", *args: P.args, **kwargs: P.kwargs) -> T:
        # On the event loop, on one connection: a WAL read of a local file takes microseconds, far
        # less than handing it to a thread and waking the loop again. The transaction is begun and
        # ended on the driver, which costs a fraction of SQLAlchemy's; a statement executed through
        # SQLAlchemy joins it (the reader's engine has no "begin" hook).
        conn = self._read_conn
        if conn is None:
            conn = self._read_conn = self._reader.connect()
        driver = conn.connection.driver_connection
        try:
            driver.execute("BEGIN")  # type: ignore[union-attr]
            return transaction(conn, *args, **kwargs)
        except (OperationalError, sqlite3.OperationalError) as exc:
            reason = str(exc.orig if isinstance(exc, OperationalError) else exc)
            if "locked" in reason or "busy" in reason:
                msg = "the database is busy; retry shortly"
                raise DatabaseBusy(msg) from exc
            raise
        finally:
            if conn.in_transaction():
                conn.commit()  # SQLAlchemy's bookkeeping, and the driver's transaction with it
            else:
                driver.commit()  # type: ignore[union-attr]

    @property
    def is_waiting_for_write_lock(self) -> bool:
        """Whether writes are queued behind another process's write lock (on the writer thread)."""
        return self._write_queue.is_waiting_for_lock

    async def write(self, transaction: "Transaction[P, T]", *args: P.args, **kwargs: P.kwargs) -> T:
        def job(conn: Connection) -> T:
            return transaction(conn, *args, **kwargs)

        return await self._write_queue.run(job)

    async def close(self) -> None:
        await self._write_queue.close()
        if self._read_conn is not None:
            self._read_conn.close()
        self._reader.dispose()


# Any fixed number: the key of the advisory lock that serialises schema creation on PostgreSQL.
_SCHEMA_LOCK_KEY = 0x7265_6664_6273  # "refdbs"


def _create_all(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Two processes starting at once (the server and `seed`) would both find a table missing and
        # both create it, and one would fail; SQLite's write lock already serialises them.
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
    metadata.create_all(conn)


def _tune_sqlite(engine: Engine, *, begin: str | None, busy_timeout_ms: int, autocheckpoint: bool = True) -> None:
    """Pragmas on connect, and `begin` (e.g. `BEGIN IMMEDIATE`) when SQLAlchemy begins a transaction.

    With `begin` None SQLAlchemy begins nothing: its transactions join the one the caller began on
    the driver.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: object) -> None:
        # Take transaction control away from the driver so the "begin" hook below decides it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL stays consistent
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    if begin is None:
        return

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # On the driver's connection: a third of the cost of `exec_driver_sql`.
        try:
            conn.connection.driver_connection.execute(begin)  # type: ignore[union-attr]
        except sqlite3.OperationalError as exc:  # e.g. "database is locked": as SQLAlchemy reports it
            raise OperationalError(begin, None, exc) from exc


def advance_id_sequence(conn: Connection, table_name: str) -> None:
    """After inserting an explicit id on PostgreSQL, move the table's id sequence past it.

    SQLite needs nothing: its next rowid is always the largest one plus one.
    """
    if conn.dialect.name != "postgresql":
        return
    # table_name is one of our own table names, never input.
    conn.exec_driver_sql(
        f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), "  # noqa: S608
        f"(SELECT MAX(id) FROM {table_name}))"
    )
