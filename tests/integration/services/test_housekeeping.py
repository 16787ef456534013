"""Housekeeping (expired idempotency keys, published outbox rows past their retention) on the store (SQLite, and PostgreSQL in `make test-postgres`)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from payment_service.domain.events import EventStream, OutboundEvent
from payment_service.services import housekeeping
from payment_service.services.housekeeping import Housekeeper
from payment_service.settings import StoreSettings
from payment_service.store import idempotency, outbox
from payment_service.store.database import Database, create_engine
from payment_service.store.idempotency import ClaimState, IdempotencyKey
from payment_service.store.schema import upgrade_schema
from tests.support.databases import database_url

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    engine = create_engine(StoreSettings(database_url=database_url(tmp_path / "store.sqlite3")))
    await upgrade_schema(engine)
    database = Database(engine)
    yield database
    await database.close()
    await engine.dispose()


def housekeeper(database: Database, *, retention: timedelta = timedelta(days=7)) -> Housekeeper:
    return Housekeeper(database, interval_s=60, outbox_retention_s=retention.total_seconds(), clock=lambda: NOW)


async def claim(database: Database, key: IdempotencyKey, *, expires_at: datetime) -> ClaimState:
    async with database.transaction() as conn:
        result = await idempotency.claim_key(conn, key, fingerprint="f" * 64, now=NOW, expires_at=expires_at)
    return result.state


async def stored(database: Database, key: IdempotencyKey) -> bool:
    async with database.reading() as conn:
        # find_key treats an expired key as absent; a `now` far in the past sees every stored key.
        return await idempotency.find_key(conn, key, fingerprint="f" * 64, now=NOW - timedelta(days=365)) is not None


class TestIdempotencyKeys:
    async def test_expired_keys_are_deleted_and_live_ones_kept(self, database: Database) -> None:
        expired = IdempotencyKey("42", "old")
        live = IdempotencyKey("42", "new")
        assert await claim(database, expired, expires_at=NOW - timedelta(seconds=1)) is ClaimState.CLAIMED
        assert await claim(database, live, expires_at=NOW + timedelta(hours=1)) is ClaimState.CLAIMED

        swept = await housekeeper(database).sweep_once()

        assert swept.expired_keys == 1
        assert not await stored(database, expired)
        assert await stored(database, live)

    async def test_a_sweep_with_nothing_expired_deletes_nothing(self, database: Database) -> None:
        live = IdempotencyKey("42", "new")
        await claim(database, live, expires_at=NOW + timedelta(hours=1))

        assert (await housekeeper(database).sweep_once()).expired_keys == 0
        assert await stored(database, live)


def event(n: int) -> OutboundEvent:
    return OutboundEvent(
        event_id=f"e{n}",
        stream=EventStream.PAYMENTS,
        event_type="payment.approved",
        subject=f"p{n}",
        key=f"o{n}",
        data=b"{}",
        occurred_at=NOW - timedelta(days=30),
    )


class TestPublishedEvents:
    async def test_events_published_before_the_retention_are_deleted_in_batches_and_the_rest_kept(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(housekeeping, "PUBLISHED_BATCH", 2)
        async with database.transaction() as conn:
            await outbox.add_events(conn, [event(n) for n in range(6)])
        async with database.autocommit() as conn:
            rows = await outbox.claim_unpublished(conn, limit=10, now=NOW, lease_until=NOW + timedelta(minutes=1))
            seqs = [row.seq for row in rows]
            # e0, e1 and e2 published 8 days ago, e3 and e4 just inside the 7 days, e5 never.
            await outbox.mark_published(conn, seqs[:3], published_at=NOW - timedelta(days=8))
            await outbox.mark_published(conn, seqs[3:5], published_at=NOW - timedelta(days=6))

        swept = await housekeeper(database).sweep_once()

        assert swept.published_events == 3  # two batches: a full one, then a short one
        async with database.reading() as conn:
            left = (await conn.execute(select(outbox.outbox.c.event_id).order_by(outbox.outbox.c.seq))).scalars().all()
        assert left == ["e3", "e4", "e5"]
        assert (await housekeeper(database).sweep_once()).published_events == 0
