"""Statement: a SQLAlchemy Core statement compiled once, run on SQLite's driver directly.

The hot requests run a few tiny statements each. On SQLite, SQLAlchemy's execution path (cache
lookup, execution context, events, result objects) costs several times what SQLite itself spends, so
a `Statement` compiles its statement once per dialect and runs the SQL string on the driver's
connection, inside the transaction the SQLAlchemy `Connection` opened, applying the same bind and
result processors SQLAlchemy would. On other backends (PostgreSQL) it simply executes through the
`Connection`. Either way rows come back as named tuples: `row.status`, `row[0]`, unpacking.
"""

from collections import namedtuple
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Processor], ...]
    results: tuple[Processor, ...]
    row: Callable[..., Sequence[Any]] | None


class Statement:
    """`statement`, compiled for the SQLite driver on first use.

    `column_keys` names the parameters of an INSERT or UPDATE without explicit values (its SET or
    VALUES list); every execution must pass exactly those keys.
    """

    def __init__(self, statement: Executable, *, column_keys: Collection[str] | None = None) -> None:
        self._statement = statement
        self._column_keys = None if column_keys is None else list(column_keys)
        self._sqlite: _Compiled | None = None

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Execute and fetch every row."""
        if conn.dialect.name != "sqlite":
            result = conn.execute(self._statement, dict(params))
            # A write without RETURNING has no rows (iterating its result raises), as on SQLite's path.
            return list(result) if result.returns_rows else []
        compiled = self._sqlite or self._compile(conn.dialect)
        values = [params[key] if process is None else process(params[key]) for key, process in compiled.binds]
        cursor = conn.connection.driver_connection.execute(compiled.sql, values)  # type: ignore[union-attr]
        if compiled.row is None:
            return []
        make, processors = compiled.row, compiled.results
        if not any(processors):
            return [make(*raw) for raw in cursor.fetchall()]
        return [
            make(
                *[value if process is None else process(value) for process, value in zip(processors, raw, strict=True)]
            )
            for raw in cursor.fetchall()
        ]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any | None:
        """Execute; the first row, or None."""
        rows = self.rows(conn, params)
        return rows[0] if rows else None

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._statement.compile(dialect=dialect, column_keys=self._column_keys)  # type: ignore[attr-defined]
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            msg = "a Statement needs a positional SQL compilation"
            raise TypeError(msg)
        # The same bind and result processors SQLAlchemy applies itself (e.g. aware datetimes, JSON).
        bind_processors: Mapping[str, Any] = compiled._bind_processors
        binds = tuple((compiled.binds[name].key, bind_processors.get(name)) for name in compiled.positiontup)
        columns = compiled._result_columns
        results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
        row = namedtuple("Row", [column.keyname for column in columns]) if columns else None
        self._sqlite = _Compiled(compiled.string, binds, results, row)
        return self._sqlite
