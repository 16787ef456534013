"""The SQLite connection under the store's engine: statements on the event loop, waits on a thread.

SQLAlchemy's aiosqlite dialect wraps whatever `connect_sqlite` returns, exactly as it wraps an
aiosqlite connection; nothing above `store/database.py` knows the difference.

Why not aiosqlite itself: it runs every cursor call on the connection's thread, about four thread
hops per statement, and on this project's 2-core VM each hop (a futex wake-up and a switch back) cost
more CPU than the statement: the store alone took ~6 ms of CPU per payment (`bench/pay_flow.py`).
Here a statement runs where it is awaited. On a local WAL file that is microseconds of B-tree work
that cannot wait: in WAL mode readers never wait for the writer, and a writer holding the write lock
never waits for anyone. What can wait runs on a thread, so the event loop never blocks on a lock or
a disk flush:
- taking the write lock (`BEGIN IMMEDIATE`) is tried once at once; if another process (the worker)
  holds it, the wait (up to the busy timeout) happens on a thread;
- checkpoints (copying the WAL into the database file, with fsyncs) are off the event loop: SQLite's
  automatic checkpoint is disabled on these connections, and after every `CHECKPOINT_EVERY_COMMITS`
  commits of an engine's connections (counted together) the next write transaction first runs a
  passive checkpoint on a thread. Commits themselves (`synchronous=NORMAL` in WAL
  mode) only append to the WAL and do not flush.
"""

import asyncio
import functools
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final, Self

BEGIN_IMMEDIATE: Final = "BEGIN IMMEDIATE"
CHECKPOINT_EVERY_COMMITS: Final = 200


class CheckpointSchedule:
    """Counts the commits of one engine's connections; every `every_commits`-th is due a checkpoint."""

    def __init__(self, every_commits: int = CHECKPOINT_EVERY_COMMITS) -> None:
        self._every_commits = every_commits
        self._commits = 0
        # Set by any connection's commit, taken by the next write transaction of any connection.
        self.pending = False

    def is_due_after_commit(self) -> bool:
        self._commits += 1
        due = self._commits % self._every_commits == 0
        self.pending = self.pending or due
        return due


class SqliteCursor:
    """An aiosqlite-shaped cursor whose calls complete where they are awaited."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: "SqliteConnection", cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Self:
        if sql == BEGIN_IMMEDIATE:
            await self._connection.begin_immediate()
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> Self:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *_sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None


class SqliteConnection:
    """An aiosqlite-shaped connection; see the module docstring for what runs where."""

    def __init__(
        self, connection: sqlite3.Connection, *, busy_timeout_ms: int, checkpoints: CheckpointSchedule
    ) -> None:
        # Named as aiosqlite names it: SQLAlchemy's adapter looks at `_connection` to see if it is open.
        self._connection: sqlite3.Connection | None = connection
        self._busy_timeout_ms = busy_timeout_ms
        self._checkpoints = checkpoints

    @property
    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def raw(self) -> sqlite3.Connection:
        """The `sqlite3` connection, for statements that run on it directly (`store/statements.py`)."""
        return self._open

    @property
    def isolation_level(self) -> str | None:
        return self._open.isolation_level

    def cursor(self) -> SqliteCursor:
        return SqliteCursor(self, self._open.cursor())

    async def begin_immediate(self) -> None:
        """Take the write lock: at once when it is free, else wait for it on a thread."""
        connection = self._open
        if self._checkpoints.pending:
            # Run before a write transaction, not after a commit: a caller cancelled here has committed
            # nothing, while one cancelled after its commit would believe its committed write failed.
            await asyncio.to_thread(_checkpoint, connection)
            self._checkpoints.pending = False
        try:
            connection.execute(BEGIN_IMMEDIATE)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            waiting = asyncio.ensure_future(asyncio.to_thread(self._wait_and_begin, connection))
            try:
                await asyncio.shield(waiting)
            except asyncio.CancelledError:
                # The thread may still take the lock after we gave up: give it back as soon as it does.
                waiting.add_done_callback(functools.partial(_rollback_if_begun, connection))
                raise

    def _wait_and_begin(self, connection: sqlite3.Connection) -> None:
        connection.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms:d}")
        try:
            connection.execute(BEGIN_IMMEDIATE)
        finally:
            connection.execute("PRAGMA busy_timeout=0")

    async def commit(self) -> None:
        connection = self._open
        if not connection.in_transaction:
            return
        connection.commit()
        self._checkpoints.is_due_after_commit()

    async def rollback(self) -> None:
        connection = self._open
        if connection.in_transaction:
            connection.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await asyncio.to_thread(connection.close)

    def stop(self) -> None:
        """Close without waiting (SQLAlchemy's terminate)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open.create_function(*args, **kwargs)


def _rollback_if_begun(connection: sqlite3.Connection, waiting: "asyncio.Future[None]") -> None:
    if not waiting.cancelled() and waiting.exception() is None and connection.in_transaction:
        connection.rollback()


def _checkpoint(connection: sqlite3.Connection) -> None:
    # Read the answer row to the end: a statement left unfinished would make the next COMMIT fail.
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _enter_wal_mode(connection: sqlite3.Connection, *, deadline: float) -> None:
    # Switching a new database file to WAL needs it to itself, and SQLite answers "locked" at once, without
    # its busy handler, while another process does the same (API and worker starting together): retry.
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)  # on the opening thread, never the event loop
        else:
            return


async def connect_sqlite(path: str, *, busy_timeout_ms: int, checkpoints: CheckpointSchedule) -> SqliteConnection:
    """Open `path` in WAL mode with the settings above; opening and the pragmas run on a thread."""

    def open_connection() -> sqlite3.Connection:
        # isolation_level=None: the driver leaves transactions to us (`BEGIN` / `BEGIN IMMEDIATE`).
        # check_same_thread=False: the connection moves between the loop and a helper thread, never
        # used by both at once (every call on it is awaited).
        connection = sqlite3.connect(
            path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            _enter_wal_mode(connection, deadline=time.monotonic() + busy_timeout_ms / 1000)
            connection.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes; WAL keeps it consistent
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA wal_autocheckpoint=0")  # see CHECKPOINT_EVERY_COMMITS
            # Nothing on the event loop may wait for a lock; waits go through `begin_immediate`.
            connection.execute("PRAGMA busy_timeout=0")
        except BaseException:
            connection.close()
            raise
        return connection

    connection = await asyncio.to_thread(open_connection)
    return SqliteConnection(connection, busy_timeout_ms=busy_timeout_ms, checkpoints=checkpoints)
