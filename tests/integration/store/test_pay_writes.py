"""The pay flow's two writes (`store/pay_writes.py`): all or nothing, on SQLite and on PostgreSQL.

On PostgreSQL each is one statement of data-modifying CTEs; these tests hold it to what the
transaction of per-table statements does on SQLite: a taken key, an order with an active attempt or a
stale version writes nothing at all, and a stored answer writes every row it must. The PostgreSQL
statement counts come from asyncpg's query log (`make test-postgres`).
"""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from payment_service.domain.errors import PaymentInProgress, PaymentVersionConflict
from payment_service.domain.events import EventStream, OutboundEvent
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.store import idempotency, outbox, pay_writes
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database
from payment_service.store.idempotency import ClaimState, IdempotencyKey, StoredResponse
from payment_service.store.pay_writes import NewKey
from payment_service.store.tables import order_updates_due, payment_transitions
from tests.integration.store import test_postgres_path as postgres_path
from tests.integration.store.conftest import QueryLog
from tests.integration.store.test_postgres_path import NOW
from tests.support.databases import on_postgres

KEY = IdempotencyKey("c1", "key-1")
RESPONSE = StoredResponse(201, b'{"status": "approved"}')


def attempt(payment_id: str = "pay_1", order_id: str = "o1") -> Payment:
    return postgres_path.attempt(payment_id, order_id)


def approved(previous: Payment) -> Payment:
    return replace(
        previous,
        status=PaymentStatus.APPROVED,
        version=previous.version + 1,
        updated_at=NOW + timedelta(seconds=1),
        gateway=GatewayResult(transaction_id="60000000001", auth_code="ABC123", response_code="1", reason_code="1"),
        captured_amount=previous.amount.amount,
    )


def new_key(*, now: datetime = NOW, fingerprint: str = "f1") -> NewKey:
    return NewKey(KEY, fingerprint, now, now + timedelta(hours=24))


def events(payment_id: str, count: int) -> list[OutboundEvent]:
    return [
        OutboundEvent(
            event_id=f"{payment_id}-e{n}",
            stream=EventStream.PAYMENTS if n == 0 else EventStream.NOTIFICATIONS,
            event_type="payment.approved" if n == 0 else "order.paid",
            subject=payment_id,
            key="o1",
            data=f'{{"n": {n}}}'.encode(),
            occurred_at=NOW,
            traceparent=None if n == 0 else "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        for n in range(count)
    ]


async def counts(database: Database, payment_id: str) -> dict[str, int]:
    async with database.reading() as conn:
        transitions = await conn.scalar(
            select(func.count()).select_from(payment_transitions).where(payment_transitions.c.payment_id == payment_id)
        )
        due = await conn.scalar(
            select(func.count()).select_from(order_updates_due).where(order_updates_due.c.payment_id == payment_id)
        )
        events_stored = await conn.scalar(select(func.count()).select_from(outbox.outbox))
    return {"transitions": int(transitions or 0), "due": int(due or 0), "events": int(events_stored or 0)}


async def stored(database: Database, payment_id: str) -> Payment | None:
    async with database.reading() as conn:
        return await payment_rows.fetch_payment(conn, payment_id)


async def key_state(database: Database, *, fingerprint: str = "f1", now: datetime = NOW) -> Any:
    async with database.reading() as conn:
        return await idempotency.find_key(conn, KEY, fingerprint=fingerprint, now=now)


class TestAttempt:
    async def test_a_fresh_key_is_claimed_for_the_attempt_stored_with_its_first_transition(
        self, logged: tuple[Database, QueryLog]
    ) -> None:
        database, log = logged
        assert await pay_writes.record_attempt(database, attempt(), claim=new_key()) is None
        queries = await log.taken()
        assert await stored(database, "pay_1") == attempt()
        assert await counts(database, "pay_1") == {"transitions": 1, "due": 0, "events": 0}
        claim = await key_state(database)
        assert (claim.state, claim.payment_id) == (ClaimState.IN_FLIGHT, "pay_1")
        if on_postgres():
            assert len(queries) == 1, queries
            assert queries[0].startswith("WITH CLAIMED_KEY AS (INSERT INTO IDEMPOTENCY_KEYS"), queries

    async def test_without_a_key_the_attempt_and_its_transition_are_stored(
        self, logged: tuple[Database, QueryLog]
    ) -> None:
        database, log = logged
        assert await pay_writes.record_attempt(database, attempt(), claim=None) is None
        if on_postgres():
            assert len(await log.taken()) == 1
        assert await stored(database, "pay_1") == attempt()
        assert await counts(database, "pay_1") == {"transitions": 1, "due": 0, "events": 0}

    async def test_a_key_another_request_completed_is_answered_and_nothing_is_written(
        self, logged: tuple[Database, QueryLog]
    ) -> None:
        database, _ = logged
        first = attempt("pay_1")
        await pay_writes.record_attempt(database, first, claim=new_key())
        await pay_writes.record_answer(
            database, approved(first), previous=first, reason="gateway_answered", key=KEY, response=RESPONSE, events=[]
        )
        taken = await pay_writes.record_attempt(database, attempt("pay_2", "o2"), claim=new_key())
        assert taken is not None
        assert (taken.state, taken.payment_id, taken.response) == (ClaimState.COMPLETED, "pay_1", RESPONSE)
        assert await stored(database, "pay_2") is None
        assert await counts(database, "pay_2") == {"transitions": 0, "due": 0, "events": 0}

    async def test_a_key_used_for_another_request_is_a_mismatch_and_nothing_is_written(
        self, logged: tuple[Database, QueryLog]
    ) -> None:
        database, _ = logged
        await pay_writes.record_attempt(database, attempt("pay_1"), claim=new_key())
        taken = await pay_writes.record_attempt(database, attempt("pay_2", "o2"), claim=new_key(fingerprint="f2"))
        assert taken is not None
        assert taken.state is ClaimState.MISMATCH
        assert await stored(database, "pay_2") is None

    async def test_an_expired_key_is_taken_over(self, logged: tuple[Database, QueryLog]) -> None:
        database, _ = logged
        await pay_writes.record_attempt(database, attempt("pay_1"), claim=new_key())
        later = NOW + timedelta(hours=25)
        assert await pay_writes.record_attempt(database, attempt("pay_2", "o2"), claim=new_key(now=later)) is None
        claim = await key_state(database, now=later)
        assert (claim.state, claim.payment_id) == (ClaimState.IN_FLIGHT, "pay_2")
        assert await stored(database, "pay_2") is not None

    async def test_an_order_with_an_active_attempt_refuses_the_next_and_leaves_its_key_free(
        self, logged: tuple[Database, QueryLog]
    ) -> None:
        database, _ = logged
        await pay_writes.record_attempt(database, attempt("pay_1"), claim=None)
        with pytest.raises(PaymentInProgress):
            await pay_writes.record_attempt(database, attempt("pay_2"), claim=new_key())
        assert await key_state(database) is None  # a retry with the same key is processed afresh
        assert await stored(database, "pay_2") is None
        assert await counts(database, "pay_2") == {"transitions": 0, "due": 0, "events": 0}


class TestAnswer:
    async def test_an_approval_stores_the_payment_transition_order_update_due_key_response_and_events(
        self, logged: tuple[Database, QueryLog]
    ) -> None:
        database, log = logged
        first = attempt()
        await pay_writes.record_attempt(database, first, claim=new_key())
        await log.taken()
        written = events("pay_1", 2)
        await pay_writes.record_answer(
            database,
            approved(first),
            previous=first,
            reason="gateway_answered",
            key=KEY,
            response=RESPONSE,
            events=written,
        )
        queries = await log.taken()
        assert await stored(database, "pay_1") == approved(first)
        assert await counts(database, "pay_1") == {"transitions": 2, "due": 1, "events": 2}
        claim = await key_state(database)
        assert (claim.state, claim.payment_id, claim.response) == (ClaimState.COMPLETED, "pay_1", RESPONSE)
        async with database.reading() as conn:
            transition = (
                await conn.execute(
                    select(
                        payment_transitions.c.from_status,
                        payment_transitions.c.to_status,
                        payment_transitions.c.version,
                        payment_transitions.c.reason,
                        payment_transitions.c.occurred_at,
                    ).where(payment_transitions.c.version == 2)
                )
            ).one()
            rows = await outbox.claim_unpublished(conn, limit=10, now=NOW, lease_until=NOW + timedelta(seconds=30))
        assert tuple(transition) == ("processing", "approved", 2, "gateway_answered", NOW + timedelta(seconds=1))
        assert [row.event for row in rows] == written
        if on_postgres():
            assert len(queries) == 1, queries
            assert queries[0].startswith("WITH UPDATED AS (UPDATE PAYMENTS"), queries

    async def test_a_stale_version_writes_nothing_at_all(self, logged: tuple[Database, QueryLog]) -> None:
        database, _ = logged
        first = attempt()
        await pay_writes.record_attempt(database, first, claim=new_key())
        settled = approved(first)
        await pay_writes.record_answer(
            database, settled, previous=first, reason="reconciled", key=None, response=None, events=[]
        )
        before = await counts(database, "pay_1")
        declined = replace(first, status=PaymentStatus.DECLINED, version=2, updated_at=NOW + timedelta(seconds=2))
        with pytest.raises(PaymentVersionConflict):
            await pay_writes.record_answer(
                database,
                declined,
                previous=first,
                reason="gateway_answered",
                key=KEY,
                response=StoredResponse(402, b"{}"),
                events=events("pay_1", 2),
            )
        assert await stored(database, "pay_1") == settled
        assert await counts(database, "pay_1") == before
        claim = await key_state(database)
        assert claim.state is ClaimState.IN_FLIGHT  # not completed with the stale answer

    async def test_an_answer_without_a_response_releases_the_key_and_records_no_order_update(
        self, logged: tuple[Database, QueryLog]
    ) -> None:
        database, _ = logged
        first = attempt()
        await pay_writes.record_attempt(database, first, claim=new_key())
        failed = replace(first, status=PaymentStatus.FAILED, version=2, updated_at=NOW + timedelta(seconds=1))
        await pay_writes.record_answer(
            database, failed, previous=first, reason="gateway_answered", key=KEY, response=None, events=[]
        )
        assert await key_state(database) is None
        assert await counts(database, "pay_1") == {"transitions": 2, "due": 0, "events": 0}
        assert (await stored(database, "pay_1")) == failed


async def test_a_relay_batch_is_marked_published_in_one_statement(logged: tuple[Database, QueryLog]) -> None:
    database, log = logged
    async with database.transaction() as conn:
        await outbox.add_events(conn, [*events("pay_1", 3), *events("pay_2", 2)])
    async with database.autocommit() as conn:
        rows = await outbox.claim_unpublished(conn, limit=10, now=NOW, lease_until=NOW + timedelta(seconds=30))
        # The first batch on a connection also has asyncpg look up the array type (once per connection).
        await outbox.mark_published(conn, [rows[0].seq], published_at=NOW)
    await log.taken()
    async with database.autocommit() as conn:
        await outbox.mark_published(conn, [row.seq for row in rows[1:4]], published_at=NOW)
    queries = await log.taken()
    later = NOW + timedelta(minutes=5)  # every lease has run out: only the unpublished row is left
    async with database.autocommit() as conn:
        left = await outbox.claim_unpublished(conn, limit=10, now=later, lease_until=later)
    assert [row.event.event_id for row in left] == ["pay_2-e1"]
    if on_postgres():
        assert len(queries) == 1, queries
