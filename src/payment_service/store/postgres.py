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

This leans on three attributes of SQLAlchemy's asyncpg adapter (`_connection`, `_transaction`,
`_start_transaction`), stable through SQLAlchemy 2.0 and 2.1 (the range `pyproject.toml` allows);
`tests/integration/store/test_postgres_path.py` checks them on a real server.
"""

from typing import Any

import asyncpg
from sqlalchemy import exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Connection

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


def postgres_driver(conn: Connection) -> PostgresDriver | None:
    """The asyncpg driver under `conn`, or None when it is another driver's."""
    adapter: Any = conn.connection.dbapi_connection
    return PostgresDriver(adapter) if isinstance(adapter, AsyncAdapt_asyncpg_connection) else None
