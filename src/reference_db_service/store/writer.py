"""SqliteWriter: SQLite's single writer, on the event loop, with group commit.

Write transactions queue up while the event loop handles a round of requests; at the end of that
round the writer runs whatever has queued as one SQLite transaction, each job inside its own
SAVEPOINT, and commits once. A job that fails rolls back to its savepoint only, so every job still
commits or fails alone, and a caller hears back only after the commit that holds its job. Batching
spares a BEGIN and a COMMIT per job.

The batch runs on the event loop itself: in WAL mode with `synchronous=NORMAL` a commit writes to
the WAL without syncing, so a batch takes well under a millisecond, less than handing it to another
thread and waking the loop again. What could block the loop is moved off it:
- The write lock held by another process (e.g. `reference-db-service seed`): the loop's connection
  does not wait for it (busy timeout 0). When `BEGIN IMMEDIATE` finds the lock taken, that batch and
  every later one go to a writer thread whose connection waits up to the configured busy timeout,
  until the thread has caught up; the order of jobs is kept.
- Checkpoints, which sync the database file: the loop's connection never checkpoints by itself
  (`wal_autocheckpoint=0`); every `CHECKPOINT_EVERY_COMMITS` commits the thread runs a passive one.
"""

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from reference_db_service.errors import DatabaseBusy

T = TypeVar("T")
Job = Callable[[Connection], Any]
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)

MAX_BATCH = 64
# A short write adds a few WAL pages; SQLite's own default checkpoints at 1000 pages.
CHECKPOINT_EVERY_COMMITS = 200


@dataclass(slots=True)
class _Pending:
    job: Job
    future: "asyncio.Future[Any]"


class SqliteWriter:
    """Runs write jobs in batches; see the module docstring.

    `loop_writer` must open connections that never wait for a lock (busy timeout 0) and never
    checkpoint by themselves; `thread_writer` connections wait up to the busy timeout.
    """

    def __init__(self, *, loop_writer: Engine, thread_writer: Engine) -> None:
        self._loop_engine = loop_writer
        self._thread_engine = thread_writer
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference-db-writer")
        self._queue: list[_Pending] = []
        self._drain_scheduled = False
        self._thread_queue: list[_Pending] = []
        self._thread_task: asyncio.Task[None] | None = None
        self._checkpoint: asyncio.Future[None] | None = None
        self._commits_since_checkpoint = 0
        self._conn: Connection | None = None  # the loop's, kept open between batches

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run `job` in a write transaction; its result once committed, or its exception.

        Raises:
            DatabaseBusy: another process kept the write lock past the busy timeout.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Pending(job, future))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            # After the callbacks already due: requests that arrived together commit together.
            loop.call_soon(self._drain)
        return await future

    @property
    def is_waiting_for_lock(self) -> bool:
        """Whether writes are queued behind another process's write lock (on the writer thread)."""
        return self._thread_task is not None

    async def close(self) -> None:
        while self._queue or self._thread_task is not None:
            if self._thread_task is not None:
                await self._thread_task
            else:
                self._drain()
        if self._checkpoint is not None:
            await self._checkpoint
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._thread_engine.dispose)
        self._thread.shutdown()
        if self._conn is not None:
            self._conn.close()
        self._loop_engine.dispose()

    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._queue:
            if self._thread_task is not None:  # the thread has not caught up: keep the order
                self._to_thread(self._queue)
                self._queue = []
                return
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            if self._conn is None:
                self._conn = self._loop_engine.connect()
            outcomes = run_batch(self._conn, [pending.job for pending in batch])
            if outcomes is None:  # another process holds the write lock
                self._to_thread(batch)
                continue
            _settle(batch, outcomes)
            self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= CHECKPOINT_EVERY_COMMITS and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._commits_since_checkpoint = 0
            loop = asyncio.get_running_loop()
            self._checkpoint = loop.run_in_executor(self._thread, checkpoint_wal, self._thread_engine)

    def _to_thread(self, batch: list[_Pending]) -> None:
        self._thread_queue.extend(batch)
        if self._thread_task is None:
            self._thread_task = asyncio.get_running_loop().create_task(self._drain_in_thread())

    async def _drain_in_thread(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._thread_queue:
                batch, self._thread_queue = self._thread_queue[:MAX_BATCH], self._thread_queue[MAX_BATCH:]
                jobs = [pending.job for pending in batch]
                try:
                    outcomes = await loop.run_in_executor(self._thread, run_waiting_batch, self._thread_engine, jobs)
                except Exception as exc:  # noqa: BLE001 - e.g. the executor shut down: no caller may hang
                    outcomes = [(False, exc)] * len(batch)
                _settle(batch, outcomes)
        finally:
            self._thread_task = None


def _settle(batch: Sequence[_Pending], outcomes: Sequence[Outcome]) -> None:
    for pending, (ok, value) in zip(batch, outcomes, strict=True):
        if pending.future.done():  # the caller went away; its job ran anyway
            continue
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)


def run_batch(conn: Connection, jobs: Sequence[Job]) -> list[Outcome] | None:
    """Run `jobs` in one transaction on `conn`, each in a savepoint (unless alone); commit once.

    None when the write lock could not be taken at once (nothing ran), so the caller may wait for
    it elsewhere. `conn` is left outside any transaction.
    """
    try:
        try:
            conn.begin()
        except OperationalError as exc:
            if _is_busy(exc):
                return None
            raise
        outcomes = _run_alone(conn, jobs[0]) if len(jobs) == 1 else [_run_in_savepoint(conn, job) for job in jobs]
        if conn.in_transaction():
            conn.commit()
        return outcomes
    except Exception as exc:  # noqa: BLE001 - BEGIN or COMMIT failed: every job failed, nothing was written
        if conn.in_transaction():
            conn.rollback()
        return [(False, _translated(exc))] * len(jobs)


def run_waiting_batch(engine: Engine, jobs: Sequence[Job]) -> list[Outcome]:
    """`run_batch` on a connection that waits for the write lock up to its busy timeout."""
    with engine.connect() as conn:
        outcomes = run_batch(conn, jobs)
    if outcomes is None:
        busy = DatabaseBusy("the database is busy; retry shortly")
        return [(False, busy)] * len(jobs)
    return outcomes


def checkpoint_wal(engine: Engine) -> None:
    """Copy committed WAL pages into the database file without waiting for readers or writers."""
    with engine.connect() as conn, contextlib.suppress(sqlite3.Error):  # a later checkpoint catches up
        # On the driver's connection: SQLAlchemy would open a transaction first, where a checkpoint
        # cannot run.
        conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]


def _is_busy(exc: OperationalError) -> bool:
    return "locked" in str(exc.orig) or "busy" in str(exc.orig)


def _translated(exc: Exception) -> Exception:
    if isinstance(exc, OperationalError) and _is_busy(exc):
        busy = DatabaseBusy("the database is busy; retry shortly")
        busy.__cause__ = exc
        return busy
    return exc


def _run_alone(conn: Connection, job: Job) -> list[Outcome]:
    try:
        return [(True, job(conn))]
    except Exception as exc:  # noqa: BLE001 - handed to the job's caller, who raises it
        conn.rollback()
        return [(False, exc)]


def _run_in_savepoint(conn: Connection, job: Job) -> Outcome:
    # On the driver's connection: SQLAlchemy's nested transactions cost more than a short job.
    driver = conn.connection.driver_connection
    driver.execute("SAVEPOINT job")  # type: ignore[union-attr]
    try:
        value = job(conn)
    except Exception as exc:  # noqa: BLE001 - handed to the job's caller, who raises it
        driver.execute("ROLLBACK TO SAVEPOINT job")  # type: ignore[union-attr]
        driver.execute("RELEASE SAVEPOINT job")  # type: ignore[union-attr]
        return False, exc
    driver.execute("RELEASE SAVEPOINT job")  # type: ignore[union-attr]
    return True, value
