"""Order updates due on the store (SQLite, and PostgreSQL in `make test-postgres`)."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payment_service.domain.payments import PaymentStatus
from payment_service.store import order_updates_due
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database
from tests.integration.store.test_postgres_path import NOW, attempt

LEASE = timedelta(seconds=300)


@pytest.fixture
async def database(engine: AsyncEngine) -> AsyncIterator[Database]:
    database = Database(engine)
    async with database.transaction() as conn:
        for n, status in enumerate((PaymentStatus.APPROVED, PaymentStatus.DECLINED, PaymentStatus.APPROVED)):
            created = attempt(f"p{n}", f"o{n}")
            await payment_rows.insert_payment(conn, created, reason="attempt_created")
            settled = replace(created, status=status, version=created.version + 1, updated_at=NOW + timedelta(n))
            await payment_rows.update_payment(conn, settled, previous=created, reason="gateway_answered")
    yield database
    await database.close()


async def due(database: Database, *, at: timedelta = timedelta(0)) -> list[str]:
    async with database.reading() as conn:
        return list(await order_updates_due.fetch_due(conn, due_before=NOW + at, now=NOW + at, limit=10))


async def claim(database: Database, payment_id: str, *, at: timedelta = timedelta(0)) -> int | None:
    async with database.transaction() as conn:
        return await order_updates_due.claim_due(
            conn, payment_id, due_before=NOW + at, now=NOW + at, lease_until=NOW + at + LEASE
        )


async def test_an_approval_records_its_order_update_due_and_nothing_else_does(database: Database) -> None:
    assert await due(database) == ["p0"]
    assert await due(database, at=timedelta(days=3)) == ["p0", "p2"]


async def test_a_due_update_is_leased_to_one_sweep_until_put_off_or_the_lease_runs_out(database: Database) -> None:
    assert await claim(database, "p0") == 0
    assert await claim(database, "p0") is None  # another sweep holds it
    assert await due(database) == []
    assert await claim(database, "p0", at=LEASE + timedelta(seconds=1)) == 0  # its holder died
    async with database.transaction() as conn:
        await order_updates_due.put_off(conn, "p0", due_at=NOW + timedelta(hours=1), attempts=1)
    assert await claim(database, "p0", at=LEASE + timedelta(seconds=2)) is None  # not due yet
    assert await claim(database, "p0", at=timedelta(hours=1)) == 1


async def test_a_met_update_is_no_longer_due(database: Database) -> None:
    async with database.transaction() as conn:
        await order_updates_due.clear_due(conn, "p0")
        assert await order_updates_due.count_due(conn, due_before=NOW + timedelta(days=3)) == 1
    assert await claim(database, "p0") is None


class TestClearances:
    async def test_clears_arriving_together_share_a_delete_and_each_returns_once_its_row_is_gone(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deletes: list[list[str]] = []
        started, go_on = asyncio.Event(), asyncio.Event()
        delete = order_updates_due.clear_all_due

        async def held(conn: AsyncConnection, payment_ids: Sequence[str]) -> None:
            deletes.append(list(payment_ids))
            started.set()
            await go_on.wait()  # the first delete is held until the others have arrived
            await delete(conn, payment_ids)

        monkeypatch.setattr(order_updates_due, "clear_all_due", held)
        clearances = order_updates_due.Clearances(database)
        assert await due(database, at=timedelta(days=3)) == ["p0", "p2"]

        async def clear_and_look(payment_id: str) -> list[str]:
            await clearances.clear(payment_id)
            return await due(database, at=timedelta(days=3))

        first = asyncio.create_task(clear_and_look("p0"))
        await started.wait()
        later = [asyncio.create_task(clearances.clear(f"x{n}")) for n in range(5)]
        last = asyncio.create_task(clear_and_look("p2"))  # these queue before the held delete goes on
        go_on.set()
        assert "p0" not in await first  # gone when its clear returned
        await asyncio.gather(*later)
        assert await last == []
        # The first caller's delete ran alone; the six that arrived while it ran shared the next one.
        assert deletes == [["p0"], [*(f"x{n}" for n in range(5)), "p2"]]

    async def test_a_failed_delete_is_raised_to_every_caller_that_shared_it(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def failing(conn: AsyncConnection, payment_ids: Sequence[str]) -> None:
            raise OperationalError("DELETE", {}, Exception("the server went away"))

        monkeypatch.setattr(order_updates_due, "clear_all_due", failing)
        clearances = order_updates_due.Clearances(database)
        results = await asyncio.gather(*(clearances.clear(p) for p in ("p0", "p2")), return_exceptions=True)
        assert [type(result) for result in results] == [OperationalError, OperationalError]
        monkeypatch.undo()
        assert await due(database, at=timedelta(days=3)) == ["p0", "p2"]  # nothing deleted: the sweep tells them
