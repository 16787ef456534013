"""Where integration tests keep their databases: a SQLite file, or a fresh PostgreSQL database when asked.

Set `PAYMENTS_TEST_POSTGRES_URL=postgresql+asyncpg://user@127.0.0.1:PORT/` (`make test-postgres` does)
and every store and reference db-service the integration tests build gets a new empty database of its
own on that server instead of a SQLite file; unset, nothing changes.

```python
url = database_url(tmp_path / "store.sqlite3")  # sqlite+aiosqlite:///… or postgresql+asyncpg://…/test_…
rows = query_rows(url, "SELECT status FROM payments WHERE order_id = ?", "1001")
```
The helpers are synchronous, and may be called from async tests: PostgreSQL's are run on a thread
with a loop of its own.
"""

import asyncio
import itertools
import os
import re
import sqlite3
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

POSTGRES_URL_ENV = "PAYMENTS_TEST_POSTGRES_URL"
_SQLITE_PREFIX = "sqlite+aiosqlite:///"
_PLACEHOLDER = re.compile(r"\?")

T = TypeVar("T")


def postgres_server_url() -> str | None:
    """The PostgreSQL server the tests were asked to use, or None (SQLite)."""
    return os.environ.get(POSTGRES_URL_ENV) or None


def on_postgres() -> bool:
    return postgres_server_url() is not None


def database_url(sqlite_path: Path) -> str:
    """A URL for a new, empty database: the SQLite file `sqlite_path`, or a database of its own on PostgreSQL."""
    server = postgres_server_url()
    if server is None:
        return f"{_SQLITE_PREFIX}{sqlite_path}"
    name = f"test_{uuid.uuid4().hex}"
    # The name is ours (hex), never input.
    admin = make_url(server).set(database="postgres").render_as_string(hide_password=False)
    _run(_execute(admin, f'CREATE DATABASE "{name}"'))
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def query_rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run `sql` (with `?` placeholders) on the database at `url` in a connection of its own; its rows."""
    if url.startswith(_SQLITE_PREFIX):
        with closing(sqlite3.connect(url.removeprefix(_SQLITE_PREFIX))) as conn, conn:
            return conn.execute(sql, params).fetchall()
    counter = itertools.count()
    named = _PLACEHOLDER.sub(lambda _: f":p{next(counter)}", sql)
    return _run(_fetch(url, named, {f"p{i}": value for i, value in enumerate(params)}))


def execute_sql(url: str, *statements: str) -> None:
    """Run `statements` (no parameters) on the database at `url`, each committed at once."""
    if url.startswith(_SQLITE_PREFIX):
        with closing(sqlite3.connect(url.removeprefix(_SQLITE_PREFIX), isolation_level=None)) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    for statement in statements:
        _run(_execute(url, statement))


async def _execute(url: str, sql: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


async def _fetch(url: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql), params)]
    finally:
        await engine.dispose()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    # On a thread with a loop of its own: the caller's loop may be running.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
