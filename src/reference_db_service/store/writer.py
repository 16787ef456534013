"""SqliteWriter: SQLite's single writer, on one thread, with group commit.

Write transactions queue in the event loop; the writer thread runs whatever has queued up as one
SQLite transaction, each job inside its own SAVEPOINT, and commits once. A job that fails rolls back
to its savepoint only, so every job still commits or fails alone, and a caller hears back only after
the commit that holds its job. Batching spares a BEGIN, a COMMIT and a thread hand-off per job,
which is most of the cost of a short write.
"""

import asyncio
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


@dataclass(slots=True)
class _Pending:
    job: Job
    future: "asyncio.Future[Any]"


class SqliteWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference-db-writer")
        self._queue: list[_Pending] = []
        self._drain_task: asyncio.Task[None] | None = None

    async def run(self, job: Callable[[Connection], T]) -> T:
        """Run `job` in a write transaction; its result once committed, or its exception.

        Raises:
            DatabaseBusy: another process kept the write lock past the busy timeout.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.append(_Pending(job, future))
        if self._drain_task is None:
            self._drain_task = loop.create_task(self._drain())
        return await future

    async def close(self) -> None:
        if self._drain_task is not None:
            await self._drain_task
        await asyncio.get_running_loop().run_in_executor(self._thread, self._engine.dispose)
        self._thread.shutdown()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                jobs = [pending.job for pending in batch]
                try:
                    outcomes = await loop.run_in_executor(self._thread, run_batch, self._engine, jobs)
                except Exception as exc:  # noqa: BLE001 - e.g. the executor shut down: no caller may hang
                    outcomes = [(False, exc)] * len(batch)
                for pending, (ok, value) in zip(batch, outcomes, strict=True):
                    if pending.future.done():  # the caller went away; its job ran anyway
                        continue
                    if ok:
                        pending.future.set_result(value)
                    else:
                        pending.future.set_exception(value)
        finally:
            self._drain_task = None


def run_batch(engine: Engine, jobs: Sequence[Job]) -> list[Outcome]:
    """Run `jobs` in one transaction, each in a savepoint (unless alone); commit once."""
    try:
        with engine.connect() as conn:
            conn.begin()
            run_one = _run_alone if len(jobs) == 1 else _run_in_savepoint
            outcomes = [run_one(conn, job) for job in jobs]
            conn.commit()
            return outcomes
    except Exception as exc:  # noqa: BLE001 - BEGIN or COMMIT failed: every job failed, nothing was written
        return [(False, _translated(exc))] * len(jobs)


def _translated(exc: Exception) -> Exception:
    if isinstance(exc, OperationalError) and ("locked" in str(exc.orig) or "busy" in str(exc.orig)):
        busy = DatabaseBusy("the database is busy; retry shortly")
        busy.__cause__ = exc
        return busy
    return exc


def _run_alone(conn: Connection, job: Job) -> Outcome:
    try:
        return True, job(conn)
    except Exception as exc:  # noqa: BLE001 - handed to the job's caller, who raises it
        conn.rollback()
        conn.begin()  # so the commit that follows is a harmless empty one
        return False, exc


def _run_in_savepoint(conn: Connection, job: Job) -> Outcome:
    savepoint = conn.begin_nested()
    try:
        value = job(conn)
    except Exception as exc:  # noqa: BLE001 - handed to the job's caller, who raises it
        savepoint.rollback()
        return False, exc
    savepoint.commit()
    return True, value
