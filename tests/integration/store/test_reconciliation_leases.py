"""Reconciliation leases on the store (SQLite, and PostgreSQL in `make test-postgres`)."""

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.store import payments as payment_rows
from payment_service.store.database import Database
from payment_service.store.reconciliation_leases import claim_for_reconciliation, release_reconciliation
from tests.integration.store.test_postgres_path import NOW, attempt

LEASE = timedelta(seconds=300)


@pytest.fixture
async def database(engine: AsyncEngine) -> AsyncIterator[Database]:
    database = Database(engine)
    async with database.transaction() as conn:
        for n in range(3):
            await payment_rows.insert_payment(conn, attempt(f"p{n}", f"o{n}"), reason="attempt_created")
    yield database
    await database.close()


async def claim(database: Database, ids: list[str], *, at: timedelta = timedelta(0)) -> set[str]:
    async with database.reading() as conn:
        candidates = [p for p in [await payment_rows.fetch_payment(conn, i) for i in ids] if p is not None]
    async with database.transaction() as conn:
        return await claim_for_reconciliation(conn, candidates, now=NOW + at, lease_until=NOW + at + LEASE)


async def test_a_leased_payment_is_not_claimed_again_until_released_or_expired(database: Database) -> None:
    assert await claim(database, ["p0", "p1"]) == {"p0", "p1"}
    assert await claim(database, ["p0", "p1", "p2"]) == {"p2"}
    async with database.transaction() as conn:
        await release_reconciliation(conn, ["p0"])
    assert await claim(database, ["p0", "p1"]) == {"p0"}
    assert await claim(database, ["p1"], at=LEASE + timedelta(seconds=1)) == {"p1"}  # its holder died


async def test_a_payment_changed_since_it_was_read_is_not_claimed(database: Database) -> None:
    async with database.reading() as conn:
        read = await payment_rows.fetch_payment(conn, "p0")
    assert read is not None
    changed = replace(read, version=read.version + 1, updated_at=NOW + timedelta(seconds=1))
    async with database.transaction() as conn:
        await payment_rows.update_payment(conn, changed, previous=read, reason="settled_elsewhere")

    async with database.transaction() as conn:
        claimed = await claim_for_reconciliation(conn, [read], now=NOW, lease_until=NOW + LEASE)

    assert claimed == set()
    assert await claim(database, ["p0"]) == {"p0"}  # not left leased
