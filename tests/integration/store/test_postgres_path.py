"""The store's PostgreSQL path, statement by statement: what a read, a payment's transactions and an idle
relay pass send to the server (asyncpg's query log of every connection), on a real PostgreSQL.

Runs in `make test-postgres`; skipped on SQLite (its fast path is `store/statements.py`'s own tests).
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payment_service.domain.errors import PaymentInProgress
from payment_service.domain.events import EventStream, OutboundEvent
from payment_service.domain.money import Money
from payment_service.domain.payments import Payment, PaymentStatus
from payment_service.store import idempotency, outbox
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database
from payment_service.store.idempotency import IdempotencyKey
from tests.integration.store.conftest import QueryLog
from tests.support.databases import on_postgres

pytestmark = pytest.mark.skipif(not on_postgres(), reason="needs PAYMENTS_TEST_POSTGRES_URL (make test-postgres)")

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def attempt(payment_id: str, order_id: str) -> Payment:
    return Payment(
        payment_id=payment_id,
        order_id=order_id,
        customer_id="c1",
        status=PaymentStatus.PROCESSING,
        amount=Money(Decimal("59.97"), "USD"),
        invoice_number=order_id,
        ref_id=payment_id,
        card_last4="1111",
        card_brand="Visa",
        created_at=NOW,
        updated_at=NOW,
        sent_at=NOW,
    )


async def test_a_read_is_its_statement_alone_no_ping_no_begin_no_rollback(logged: tuple[Database, QueryLog]) -> None:
    database, log = logged
    key = IdempotencyKey("c1", "key-1")
    for _ in range(3):
        async with database.reading() as conn:
            assert await idempotency.find_key(conn, key, fingerprint="f", now=NOW) is None
    queries = await log.taken()
    assert len(queries) == 3
    assert all(query.startswith("SELECT IDEMPOTENCY_KEYS.FINGERPRINT") for query in queries), queries


async def test_a_write_transaction_is_begin_its_statements_and_commit(logged: tuple[Database, QueryLog]) -> None:
    database, log = logged
    async with database.transaction() as conn:
        await payment_rows.insert_payment(conn, attempt("p1", "o1"), reason="attempt_created")
    queries = await log.taken()
    assert [query.split()[0].rstrip(";") for query in queries] == ["BEGIN", "INSERT", "INSERT", "COMMIT"], queries
    assert not any("RETURNING" in query for query in queries), queries
    async with database.reading() as conn:
        stored = await payment_rows.fetch_payment(conn, "p1")
    assert stored is not None
    assert stored.amount == Money(Decimal("59.97"), "USD")
    assert stored.created_at == NOW


async def test_a_failed_statement_rolls_back_and_is_raised_as_the_store_error(
    logged: tuple[Database, QueryLog],
) -> None:
    database, log = logged
    async with database.transaction() as conn:
        await payment_rows.insert_payment(conn, attempt("p1", "o1"), reason="attempt_created")
    with pytest.raises(PaymentInProgress):
        async with database.transaction() as conn:
            await payment_rows.insert_payment(conn, attempt("p2", "o1"), reason="attempt_created")
    assert (await log.taken())[-1] == "ROLLBACK;"
    async with database.reading() as conn:
        assert await payment_rows.fetch_payment(conn, "p2") is None
        assert [p.payment_id for p in await payment_rows.fetch_payments_for_order(conn, "o1")] == ["p1"]


async def test_an_idle_relay_claim_is_one_statement_and_a_claim_leases_each_row_once(
    logged: tuple[Database, QueryLog],
) -> None:
    database, log = logged
    async with database.autocommit() as conn:
        assert await outbox.claim_unpublished(conn, limit=10, now=NOW, lease_until=NOW, skip_locked=True) == []
    queries = await log.taken()
    assert len(queries) == 1
    assert queries[0].startswith("UPDATE OUTBOX SET LEASE_UNTIL"), queries

    async with database.transaction() as conn:
        await outbox.add_events(conn, [_event(n) for n in range(3)])
    lease = NOW + timedelta(seconds=60)
    async with database.autocommit() as conn:
        first = await outbox.claim_unpublished(conn, limit=2, now=NOW, lease_until=lease, skip_locked=True)
    async with database.autocommit() as conn:
        second = await outbox.claim_unpublished(conn, limit=10, now=NOW, lease_until=lease, skip_locked=True)
    assert [row.event.event_id for row in first] == ["e0", "e1"]
    assert [row.event.event_id for row in second] == ["e2"]


def _event(n: int) -> OutboundEvent:
    return OutboundEvent(
        event_id=f"e{n}",
        stream=EventStream.PAYMENTS,
        event_type="payment.approved",
        subject="p1",
        key="o1",
        data=b"{}",
        occurred_at=NOW,
    )
