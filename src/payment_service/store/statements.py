"""`Statement`: a hot SQLAlchemy Core statement, compiled once and run on the driver directly (SQLite, asyncpg).

Running a statement through `AsyncConnection.execute` cost ~100 µs of CPU (execution context, greenlet
switch, result object), more than SQLite took to run it, and the pay flow runs eight of them per payment
(`bench/pay_flow.py`). On our SQLite connections (`store/sqlite.py`) a `Statement` runs its SQL, compiled
once for the dialect, on the `sqlite3` connection with the parameters converted by the same type
processors SQLAlchemy would apply (`UtcDateTime`, binaries), so stored rows and values read back are
exactly what the SQLAlchemy path gives. Driver errors are raised as SQLAlchemy's (`IntegrityError` …).

On PostgreSQL (`store/postgres.py`) the same compiled SQL runs on the asyncpg connection, which
prepares it once per connection and caches it: later runs send only Bind and Execute.

Anything else runs through SQLAlchemy as before: foreign connections, and a statement on a connection
with no transaction open on the driver (SQLAlchemy then begins one, as it always did), except reads on
SQLite and anything on a PostgreSQL connection in autocommit.
"""

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Delete, Insert, Select, Update

from payment_service.store.postgres import DRIVER_ERRORS, PostgresDriver, postgres_driver
from payment_service.store.sqlite import SqliteConnection

Row = tuple[Any, ...]
Params = Mapping[str, Any]
_Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # parameter names in placeholder order
    bind_processors: tuple[_Processor | None, ...]
    defaults: dict[str, Any]  # values of the binds the statement holds itself (`.values(n=1)`, an OFFSET 0)
    result_processors: tuple[_Processor | None, ...] | None  # None: leave rows as the driver returns them


class Statement:
    """A statement with its bind parameters named, to run with a mapping of values.

    Args:
        statement: the Core statement (or one per dialect name, for dialect-specific forms such as
            `ON CONFLICT DO NOTHING`; the "default" entry serves any other dialect).
        column_keys: for INSERT and UPDATE, the columns the parameters set (they are compiled in).
    """

    __slots__ = ("_column_keys", "_compiled", "_statements")

    def __init__(
        self,
        statement: Select[Any] | Insert | Update | Delete | Mapping[str, Insert | Update],
        *,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        self._statements = dict(statement) if isinstance(statement, Mapping) else {"default": statement}
        self._column_keys = list(column_keys) if column_keys is not None else None
        self._compiled: dict[str, _Compiled] = {}  # by dialect name, compiled on first use

    def for_dialect(self, dialect: Dialect) -> Select[Any] | Insert | Update | Delete:
        statement = self._statements.get(dialect.name)
        return self._statements["default"] if statement is None else statement

    async def execute(self, conn: AsyncConnection, params: Params) -> int:
        """Run a write; return the number of rows it matched."""
        postgres = _postgres(conn)
        if postgres is not None:
            compiled = self._compile(conn.dialect)
            values = _bind(compiled, params)
            try:
                return _rowcount(await postgres.raw.execute(compiled.sql, *values))
            except DRIVER_ERRORS as error:
                raise postgres.error(error, compiled.sql, values) from error
        raw = _raw_sqlite(conn, writing=True)
        if raw is None:
            result = await conn.execute(self._sqlalchemy_statement(conn), dict(params))
            return int(result.rowcount)
        compiled = self._compile(conn.dialect)
        values = _bind(compiled, params)
        try:
            return raw.execute(compiled.sql, values).rowcount
        except sqlite3.Error as error:
            raise driver_error(error, compiled.sql, values) from error

    async def execute_many(self, conn: AsyncConnection, rows: Sequence[Params]) -> None:
        """Run a write once per mapping in `rows` (an `executemany`: atomic, and one round trip on asyncpg)."""
        postgres = _postgres(conn)
        if postgres is not None:
            compiled = self._compile(conn.dialect)
            values = [_bind(compiled, row) for row in rows]
            try:
                await postgres.raw.executemany(compiled.sql, values)
            except DRIVER_ERRORS as error:
                raise postgres.error(error, compiled.sql, values) from error
            return
        raw = _raw_sqlite(conn, writing=True)
        if raw is None:
            await conn.execute(self._sqlalchemy_statement(conn), [dict(row) for row in rows])
            return
        compiled = self._compile(conn.dialect)
        values = [_bind(compiled, row) for row in rows]
        try:
            raw.executemany(compiled.sql, values)
        except sqlite3.Error as error:
            raise driver_error(error, compiled.sql, values) from error

    async def fetch_all(self, conn: AsyncConnection, params: Params) -> list[Row]:
        """Run a query (or a write with RETURNING); return its rows as tuples of the returned columns' values."""
        postgres = _postgres(conn)
        rows: list[Any]
        if postgres is not None:
            compiled = self._compile(conn.dialect)
            values = _bind(compiled, params)
            try:
                rows = await postgres.raw.fetch(compiled.sql, *values)
            except DRIVER_ERRORS as error:
                raise postgres.error(error, compiled.sql, values) from error
        else:
            raw = _raw_sqlite(conn, writing=not isinstance(self.for_dialect(conn.dialect), Select))
            if raw is None:
                result = await conn.execute(self._sqlalchemy_statement(conn), dict(params))
                return [tuple(row) for row in result.all()]
            compiled = self._compile(conn.dialect)
            values = _bind(compiled, params)
            try:
                # Read to the end: an unfinished statement would keep its read snapshot open.
                rows = raw.execute(compiled.sql, values).fetchall()
            except sqlite3.Error as error:
                raise driver_error(error, compiled.sql, values) from error
        processors = compiled.result_processors
        if processors is None:
            return [tuple(row) for row in rows] if postgres is not None else rows
        return [
            tuple(value if process is None else process(value) for process, value in zip(processors, row, strict=True))
            for row in rows
        ]

    async def fetch_one(self, conn: AsyncConnection, params: Params) -> Row | None:
        rows = await self.fetch_all(conn, params)
        return rows[0] if rows else None

    def _sqlalchemy_statement(self, conn: AsyncConnection) -> Any:
        return self.for_dialect(conn.dialect)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.for_dialect(dialect), dialect, self._column_keys)
        return compiled


def _compile(
    statement: Select[Any] | Insert | Update | Delete, dialect: Dialect, column_keys: list[str] | None
) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    names = tuple(compiled.positiontup or ())
    binds = [compiled.binds[name] for name in names]
    bind_processors = tuple(bind.type.dialect_impl(dialect).bind_processor(dialect) for bind in binds)
    defaults = {name: bind.effective_value for name, bind in zip(names, binds, strict=True) if not bind.required}
    result_processors: tuple[_Processor | None, ...] | None = None
    returned = statement.selected_columns if isinstance(statement, Select) else statement.exported_columns
    if returned:
        result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned
        )
        if not any(result_processors):
            result_processors = None
    return _Compiled(compiled.string, names, bind_processors, defaults, result_processors)


def _bind(compiled: _Compiled, params: Params) -> list[Any]:
    if compiled.defaults:
        params = {**compiled.defaults, **params}
    return [
        params[name] if process is None else process(params[name])
        for name, process in zip(compiled.names, compiled.bind_processors, strict=True)
    ]


def sqlite_driver(conn: Connection) -> SqliteConnection | None:
    """Our SQLite connection under `conn`, or None when it is some other driver's."""
    # Not `PoolProxiedConnection.driver_connection`: a connection detached from its pool has none.
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:
        return None
    driver = conn.dialect.get_driver_connection(dbapi_connection)
    return driver if isinstance(driver, SqliteConnection) else None


def _postgres(conn: AsyncConnection) -> PostgresDriver | None:
    """The asyncpg driver under `conn` when a statement may run on it directly, else None.

    Only inside a transaction begun on the driver (`Database.transaction`) or in autocommit: inside a
    transaction SQLAlchemy has not begun on the driver yet, a statement run beside it would run outside it.
    """
    sync = conn.sync_connection
    driver = postgres_driver(sync) if sync is not None else None
    if driver is None or not (driver.in_transaction or driver.autocommit):
        return None
    return driver


def _rowcount(status: str) -> int:
    # asyncpg answers a command's tag: "UPDATE 1", "DELETE 0", "INSERT 0 1".
    count = status.rpartition(" ")[2]
    return int(count) if count.isdigit() else -1


def _raw_sqlite(conn: AsyncConnection, *, writing: bool) -> sqlite3.Connection | None:
    """The `sqlite3` connection under `conn` when a statement may run on it directly, else None."""
    sync = conn.sync_connection
    driver = sqlite_driver(sync) if sync is not None else None
    if driver is None:
        return None
    raw = driver.raw
    # A write outside any transaction goes through SQLAlchemy, which begins one (and commits it when told).
    if writing and not raw.in_transaction:
        return None
    return raw


def driver_error(error: sqlite3.Error, sql: str, params: Any = None) -> exc.DBAPIError:
    """`error` as SQLAlchemy raises it (`IntegrityError`, `OperationalError` …), for callers that catch those."""
    translated = exc.DBAPIError.instance(sql, params, error, sqlite3.Error)
    assert isinstance(translated, exc.DBAPIError)  # noqa: S101 - a sqlite3.Error always maps to one
    return translated
