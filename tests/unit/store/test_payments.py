"""The store's rules on a real SQLite file: the per-order active-payment rule and idempotency keys."""

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from payment_service.domain.errors import PaymentInProgress, PaymentVersionConflict
from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.settings import StoreSettings
from payment_service.store import idempotency
from payment_service.store import payments as rows
from payment_service.store.database import Database, create_engine
from payment_service.store.idempotency import ClaimState, IdempotencyKey, StoredResponse
from payment_service.store.schema import upgrade_schema

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    engine = create_engine(StoreSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"))
    await upgrade_schema(engine)
    yield Database(engine)
    await engine.dispose()


def attempt(payment_id: str, order_id: str = "1001") -> Payment:
    return Payment(
        payment_id=payment_id,
        order_id=order_id,
        customer_id="42",
        status=PaymentStatus.PROCESSING,
        amount=Money.of("59.97"),
        invoice_number=order_id,
        ref_id=payment_id.removeprefix("pay_"),
        card_last4="1111",
        card_brand="Visa",
        created_at=NOW,
        updated_at=NOW,
        sent_at=NOW,
    )


async def settle(database: Database, payment: Payment, status: PaymentStatus) -> Payment:
    settled = replace(payment, status=status, version=payment.version + 1, gateway=GatewayResult(transaction_id="8"))
    async with database.transaction() as conn:
        await rows.update_payment(conn, settled, previous=payment, reason="test")
    return settled


class TestActivePaymentRule:
    async def test_second_active_attempt_for_an_order_is_refused(self, database: Database) -> None:
        async with database.transaction() as conn:
            await rows.insert_payment(conn, attempt("pay_A"), reason="test")

        with pytest.raises(PaymentInProgress):
            async with database.transaction() as conn:
                await rows.insert_payment(conn, attempt("pay_B"), reason="test")

    @pytest.mark.parametrize("status", [PaymentStatus.DECLINED, PaymentStatus.FAILED])
    async def test_declined_or_failed_attempt_frees_the_order(self, database: Database, status: PaymentStatus) -> None:
        first = attempt("pay_A")
        async with database.transaction() as conn:
            await rows.insert_payment(conn, first, reason="test")
        await settle(database, first, status)

        async with database.transaction() as conn:
            await rows.insert_payment(conn, attempt("pay_B"), reason="test")

        async with database.reading() as conn:
            found = await rows.fetch_payments_for_order(conn, "1001")
        assert [(p.payment_id, p.status) for p in found] == [("pay_A", status), ("pay_B", PaymentStatus.PROCESSING)]

    async def test_stale_update_is_refused(self, database: Database) -> None:
        first = attempt("pay_A")
        async with database.transaction() as conn:
            await rows.insert_payment(conn, first, reason="test")
        await settle(database, first, PaymentStatus.APPROVED)

        with pytest.raises(PaymentVersionConflict):
            await settle(database, first, PaymentStatus.DECLINED)

    async def test_payment_reads_back_as_written(self, database: Database) -> None:
        first = attempt("pay_A")
        async with database.transaction() as conn:
            await rows.insert_payment(conn, first, reason="test")
        settled = await settle(database, first, PaymentStatus.APPROVED)

        async with database.reading() as conn:
            assert await rows.fetch_payment(conn, "pay_A") == settled


class TestIdempotencyKeys:
    async def claim(self, database: Database, fingerprint: str, *, now: datetime = NOW) -> idempotency.KeyClaim:
        async with database.transaction() as conn:
            return await idempotency.claim_key(
                conn, IdempotencyKey("42", "k"), fingerprint=fingerprint, now=now, expires_at=now + timedelta(hours=1)
            )

    async def test_claim_then_in_flight_then_replay(self, database: Database) -> None:
        assert (await self.claim(database, "f1")).state is ClaimState.CLAIMED
        assert (await self.claim(database, "f1")).state is ClaimState.IN_FLIGHT
        async with database.transaction() as conn:
            await idempotency.complete_key(
                conn, IdempotencyKey("42", "k"), payment_id="pay_A", response=StoredResponse(201, b"{}")
            )

        replay = await self.claim(database, "f1")

        assert (replay.state, replay.response, replay.payment_id) == (
            ClaimState.COMPLETED,
            StoredResponse(201, b"{}"),
            "pay_A",
        )
        assert (await self.claim(database, "f2")).state is ClaimState.MISMATCH

    async def test_expired_key_is_claimed_afresh(self, database: Database) -> None:
        await self.claim(database, "f1")

        later = await self.claim(database, "f2", now=NOW + timedelta(hours=2))

        assert later.state is ClaimState.CLAIMED

    async def test_released_key_can_be_claimed_again(self, database: Database) -> None:
        await self.claim(database, "f1")
        async with database.transaction() as conn:
            await idempotency.release_key(conn, IdempotencyKey("42", "k"))

        assert (await self.claim(database, "f1")).state is ClaimState.CLAIMED

    async def test_finding_a_key_writes_nothing_and_tells_what_a_claim_would_find(self, database: Database) -> None:
        key = IdempotencyKey("42", "k")
        async with database.reading() as conn:
            assert await idempotency.find_key(conn, key, fingerprint="f1", now=NOW) is None
        assert (await self.claim(database, "f1")).state is ClaimState.CLAIMED

        async with database.reading() as conn:
            same = await idempotency.find_key(conn, key, fingerprint="f1", now=NOW)
            other = await idempotency.find_key(conn, key, fingerprint="f2", now=NOW)
            expired = await idempotency.find_key(conn, key, fingerprint="f1", now=NOW + timedelta(hours=2))

        assert same is not None
        assert same.state is ClaimState.IN_FLIGHT
        assert other is not None
        assert other.state is ClaimState.MISMATCH
        assert expired is None
