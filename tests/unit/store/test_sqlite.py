"""The store's SQLite connection on a real file: waiting for the write lock never blocks the event loop."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from payment_service.settings import StoreSettings
from payment_service.store.database import Database, create_engine
from payment_service.store.schema import upgrade_schema
from payment_service.store.sqlite import CheckpointSchedule


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.sqlite3"


@pytest.fixture
async def database(store_path: Path) -> AsyncIterator[Database]:
    engine = create_engine(StoreSettings(database_url=f"sqlite+aiosqlite:///{store_path}"))
    await upgrade_schema(engine)
    yield Database(engine)
    await engine.dispose()


class TestSqliteConnection:
    async def test_write_waits_for_another_writer_without_blocking_the_event_loop(
        self, database: Database, store_path: Path
    ) -> None:
        other = sqlite3.connect(store_path, isolation_level=None, check_same_thread=False)
        other.execute("CREATE TABLE marks (n INTEGER)")
        other.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        other.execute("INSERT INTO marks VALUES (1)")

        async def write() -> int:
            async with database.transaction() as conn:
                await conn.execute(text("INSERT INTO marks VALUES (2)"))
                return int((await conn.execute(text("SELECT count(*) FROM marks"))).scalar_one())

        writer = asyncio.create_task(write())
        ticks = 0
        async with asyncio.timeout(10):
            # The loop keeps running other work while the writer waits for the lock.
            while ticks < 50:
                await asyncio.sleep(0)
                ticks += 1
            assert not writer.done()
            other.execute("COMMIT")
            count = await writer
        other.close()

        assert count == 2

    async def test_reads_see_committed_writes(self, database: Database) -> None:
        async with database.transaction() as conn:
            await conn.execute(text("CREATE TABLE marks (n INTEGER)"))
            await conn.execute(text("INSERT INTO marks VALUES (1), (2)"))

        async with database.reading() as conn:
            rows = (await conn.execute(text("SELECT n FROM marks ORDER BY n"))).scalars().all()

        assert rows == [1, 2]

    async def test_failed_write_leaves_nothing_behind(self, database: Database) -> None:
        async with database.transaction() as conn:
            await conn.execute(text("CREATE TABLE marks (n INTEGER)"))

        async def insert_then_fail() -> None:
            async with database.transaction() as conn:
                await conn.execute(text("INSERT INTO marks VALUES (1)"))
                raise RuntimeError("abort")

        with pytest.raises(RuntimeError):
            await insert_then_fail()

        async with database.reading() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM marks"))).scalar_one() == 0


class TestCheckpointSchedule:
    def test_every_nth_commit_is_due(self) -> None:
        schedule = CheckpointSchedule(every_commits=3)

        due = [schedule.is_due_after_commit() for _ in range(7)]

        assert due == [False, False, True, False, False, True, False]

    def test_a_due_checkpoint_stays_pending_until_a_write_takes_it(self) -> None:
        schedule = CheckpointSchedule(every_commits=2)

        schedule.is_due_after_commit()
        assert not schedule.pending
        schedule.is_due_after_commit()
        schedule.is_due_after_commit()  # a later commit does not clear it

        assert schedule.pending
