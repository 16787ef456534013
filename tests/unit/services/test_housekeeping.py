"""The idempotency-key sweeper on a real SQLite store."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from payment_service.services.housekeeping import IdempotencyKeySweeper
from payment_service.settings import StoreSettings
from payment_service.store import idempotency
from payment_service.store.database import Database, create_engine
from payment_service.store.idempotency import ClaimState, IdempotencyKey
from payment_service.store.schema import upgrade_schema

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    engine = create_engine(StoreSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"))
    await upgrade_schema(engine)
    database = Database(engine)
    yield database
    await database.close()
    await engine.dispose()


async def claim(database: Database, key: IdempotencyKey, *, expires_at: datetime) -> ClaimState:
    async with database.transaction() as conn:
        result = await idempotency.claim_key(conn, key, fingerprint="f" * 64, now=NOW, expires_at=expires_at)
    return result.state


async def stored(database: Database, key: IdempotencyKey) -> bool:
    async with database.reading() as conn:
        # find_key treats an expired key as absent; a `now` far in the past sees every stored key.
        return await idempotency.find_key(conn, key, fingerprint="f" * 64, now=NOW - timedelta(days=365)) is not None


class TestIdempotencyKeySweeper:
    async def test_expired_keys_are_deleted_and_live_ones_kept(self, database: Database) -> None:
        expired = IdempotencyKey("42", "old")
        live = IdempotencyKey("42", "new")
        assert await claim(database, expired, expires_at=NOW - timedelta(seconds=1)) is ClaimState.CLAIMED
        assert await claim(database, live, expires_at=NOW + timedelta(hours=1)) is ClaimState.CLAIMED

        deleted = await IdempotencyKeySweeper(database, interval_s=60, clock=lambda: NOW).sweep_once()

        assert deleted == 1
        assert not await stored(database, expired)
        assert await stored(database, live)

    async def test_a_sweep_with_nothing_expired_deletes_nothing(self, database: Database) -> None:
        live = IdempotencyKey("42", "new")
        await claim(database, live, expires_at=NOW + timedelta(hours=1))

        assert await IdempotencyKeySweeper(database, interval_s=60, clock=lambda: NOW).sweep_once() == 0
        assert await stored(database, live)
