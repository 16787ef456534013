"""Attacks on the pay flow's two writes (`store/pay_writes.py`) and on what finishes a payment after them.

Two `Database`s on one store stand for two API instances (on PostgreSQL, each with connections of its
own); they race the same key, the same order and the reconciler's update. Each test tries to charge
twice, lose or misstate a record, write an event for a stale answer, leave a key answering wrongly, or
leave a caller waiting for an order update's delete that will not come. On PostgreSQL the writes are
one CTE statement each, and the rows they store are compared with those of the per-table transaction
for a twin payment (on SQLite both are that transaction).
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import String, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.domain.errors import PaymentInProgress, PaymentVersionConflict
from payment_service.domain.events import EventStream, OutboundEvent
from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.settings import StoreSettings
from payment_service.store import idempotency, order_updates_due, outbox, pay_writes
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database, create_engine
from payment_service.store.idempotency import ClaimState, IdempotencyKey, KeyClaim, StoredResponse
from payment_service.store.pay_writes import NewKey
from payment_service.store.tables import idempotency_keys, payment_transitions, payments
from payment_service.store.tables import order_updates_due as due_table
from tests.integration.store.test_pay_writes import approved, attempt
from tests.integration.store.test_postgres_path import NOW

RACERS = 8
TTL = timedelta(hours=24)
# The answer's statement shapes: (status, events, the key's response; None releases it).
SHAPES = [
    (PaymentStatus.APPROVED, 2, StoredResponse(201, b"{}")),
    (PaymentStatus.DECLINED, 1, StoredResponse(402, b"{}")),
    (PaymentStatus.HELD_FOR_REVIEW, 1, StoredResponse(202, b"{}")),
    (PaymentStatus.UNKNOWN, 0, StoredResponse(202, b"{}")),
    (PaymentStatus.FAILED, 0, None),
]


@pytest.fixture
async def database(engine: AsyncEngine) -> AsyncIterator[Database]:
    database = Database(engine)
    yield database
    await database.close()


@pytest.fixture
async def other(engine: AsyncEngine) -> AsyncIterator[Database]:
    """A second instance on the same store, with an engine (and connections) of its own."""
    engine = create_engine(StoreSettings(database_url=engine.url.render_as_string(hide_password=False)))
    database = Database(engine)
    yield database
    await database.close()
    await engine.dispose()


def key_of(name: str) -> IdempotencyKey:
    return IdempotencyKey("c1", name)


def claim_of(key: IdempotencyKey, *, now: datetime = NOW, fingerprint: str = "f1") -> NewKey:
    return NewKey(key, fingerprint, now, now + TTL)


def settled(
    previous: Payment, status: PaymentStatus, *, message: str = "This transaction has been approved."
) -> Payment:
    return replace(
        previous,
        status=status,
        version=previous.version + 1,
        updated_at=previous.updated_at + timedelta(seconds=1, microseconds=123_457),
        gateway=GatewayResult(
            transaction_id="60000000001" if status is not PaymentStatus.FAILED else None,
            auth_code="ABC123" if status is PaymentStatus.APPROVED else None,
            response_code={PaymentStatus.APPROVED: "1", PaymentStatus.DECLINED: "2"}.get(status, "3"),
            reason_code="1",
            message=message,
            avs_result="Y",
            cvv_result="M",
            account_number="XXXX1111",
            account_type="Visa",
        ),
        captured_amount=previous.amount.amount if status is PaymentStatus.APPROVED else Decimal(0),
    )


def events_of(payment: Payment, count: int, *, body: bytes = b'{"n": 0}') -> list[OutboundEvent]:
    return [
        OutboundEvent(
            event_id=f"{payment.payment_id}-e{n}",
            stream=EventStream.PAYMENTS if n == 0 else EventStream.NOTIFICATIONS,
            event_type=f"payment.{payment.status.value}" if n == 0 else "order.paid",
            subject=payment.payment_id,
            key=payment.order_id,
            data=body + bytes([n]),
            occurred_at=payment.updated_at,
            traceparent=None if n == 0 else "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        for n in range(count)
    ]


async def answer_with(
    database: Database,
    payment: Payment,
    *,
    previous: Payment,
    key: IdempotencyKey | None,
    response: StoredResponse | None,
    events: int,
) -> None:
    """The pay flow's answer: `payment` over `previous`, the key completed with `response`, `events` events."""
    await pay_writes.record_answer(
        database,
        payment,
        previous=previous,
        reason="gateway_answered",
        key=key,
        response=response,
        events=events_of(payment, events),
    )


async def attempts_with_keys(database: Database) -> list[Payment]:
    """`RACERS` attempts stored, each for an order and with a key of its own (`k<n>` for `pay_<n>`)."""
    tries = [attempt(f"pay_{n}", f"o{n}") for n in range(RACERS)]
    for n, first in enumerate(tries):
        await pay_writes.record_attempt(database, first, claim=claim_of(key_of(f"k{n}")))
    return tries


async def stored(database: Database, payment_id: str) -> Payment | None:
    async with database.reading() as conn:
        return await payment_rows.fetch_payment(conn, payment_id)


async def find(database: Database, key: IdempotencyKey, *, now: datetime = NOW) -> KeyClaim | None:
    async with database.reading() as conn:
        return await idempotency.find_key(conn, key, fingerprint="f1", now=now)


async def rows_of(database: Database, payment_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row the store holds for `payment_id` (its key's too), by table, without generated `seq`s."""
    async with database.reading() as conn:
        found = {
            "payments": (await conn.execute(select(payments).where(payments.c.payment_id == payment_id))).mappings(),
            "transitions": (
                await conn.execute(
                    select(payment_transitions)
                    .where(payment_transitions.c.payment_id == payment_id)
                    .order_by(payment_transitions.c.seq)
                )
            ).mappings(),
            "due": (await conn.execute(select(due_table).where(due_table.c.payment_id == payment_id))).mappings(),
            "keys": (
                await conn.execute(select(idempotency_keys).where(idempotency_keys.c.payment_id == payment_id))
            ).mappings(),
            "outbox": (
                await conn.execute(
                    select(outbox.outbox).where(outbox.outbox.c.subject == payment_id).order_by(outbox.outbox.c.seq)
                )
            ).mappings(),
        }
        return {table: [{k: v for k, v in row.items() if k != "seq"} for row in rows] for table, rows in found.items()}


class TestTwoInstancesRaceOneKey:
    async def test_the_same_key_from_two_instances_at_once_stores_one_attempt_and_the_rest_are_told_in_flight(
        self, database: Database, other: Database
    ) -> None:
        key = key_of("double-click")
        tries = [attempt(f"pay_{n}", "o1") for n in range(RACERS)]
        answers = await asyncio.gather(
            *(pay_writes.record_attempt((database, other)[n % 2], a, claim=claim_of(key)) for n, a in enumerate(tries))
        )

        stored_ids = [a.payment_id for a in tries if await stored(database, a.payment_id) is not None]
        assert len(stored_ids) == 1, answers
        assert [n for n, answer in enumerate(answers) if answer is None] == [int(stored_ids[0].removeprefix("pay_"))]
        assert all(a is None or a.state is ClaimState.IN_FLIGHT for a in answers), answers
        assert {a.payment_id for a in answers if a is not None} <= {stored_ids[0], None}
        claim = await find(other, key)
        assert claim is not None
        assert (claim.state, claim.payment_id) == (ClaimState.IN_FLIGHT, stored_ids[0])

    async def test_other_keys_for_one_order_from_two_instances_store_one_attempt_and_leave_the_losers_keys_free(
        self, database: Database, other: Database
    ) -> None:
        tries = [attempt(f"pay_{n}", "o1") for n in range(RACERS)]
        answers = await asyncio.gather(
            *(
                pay_writes.record_attempt((database, other)[n % 2], a, claim=claim_of(key_of(f"k{n}")))
                for n, a in enumerate(tries)
            ),
            return_exceptions=True,
        )

        won = [n for n, answer in enumerate(answers) if answer is None]
        assert len(won) == 1, answers
        assert all(isinstance(answers[n], PaymentInProgress) for n in range(RACERS) if n not in won), answers
        for n in range(RACERS):
            claim = await find(database, key_of(f"k{n}"))
            if n in won:
                assert claim is not None
                assert claim.payment_id == f"pay_{n}"
            else:  # a retry with the losing key is processed afresh, not told "in flight" forever
                assert claim is None
                assert await rows_of(database, f"pay_{n}") == {
                    "payments": [],
                    "transitions": [],
                    "due": [],
                    "keys": [],
                    "outbox": [],
                }

    async def test_attempts_without_keys_for_one_order_from_two_instances_store_one(
        self, database: Database, other: Database
    ) -> None:
        tries = [attempt(f"pay_{n}", "o1") for n in range(RACERS)]
        answers = await asyncio.gather(
            *(pay_writes.record_attempt((database, other)[n % 2], a, claim=None) for n, a in enumerate(tries)),
            return_exceptions=True,
        )

        won = [n for n, answer in enumerate(answers) if answer is None]
        assert len(won) == 1, answers
        assert all(isinstance(answers[n], PaymentInProgress) for n in range(RACERS) if n not in won), answers
        assert [a.payment_id for a in tries if await stored(other, a.payment_id) is not None] == [f"pay_{won[0]}"]

    async def test_an_expired_key_taken_over_by_two_instances_at_once_goes_to_one_new_attempt(
        self, database: Database, other: Database
    ) -> None:
        key = key_of("expiring")
        first = attempt("pay_old", "o0")
        await pay_writes.record_attempt(database, first, claim=claim_of(key))
        declined = settled(first, PaymentStatus.DECLINED)
        await answer_with(database, declined, previous=first, key=key, response=StoredResponse(402, b"{}"), events=1)
        later = NOW + TTL + timedelta(minutes=1)
        tries = [replace(attempt(f"pay_{n}", f"o{n + 1}"), created_at=later) for n in range(RACERS)]
        answers = await asyncio.gather(
            *(
                pay_writes.record_attempt((database, other)[n % 2], a, claim=claim_of(key, now=later))
                for n, a in enumerate(tries)
            )
        )

        won = [n for n, answer in enumerate(answers) if answer is None]
        assert len(won) == 1, answers
        assert all(a is None or a.state is ClaimState.IN_FLIGHT for a in answers), answers
        assert [a.payment_id for a in tries if await stored(other, a.payment_id) is not None] == [f"pay_{won[0]}"]
        claim = await find(other, key, now=later)
        assert claim is not None
        assert (claim.state, claim.payment_id) == (ClaimState.IN_FLIGHT, f"pay_{won[0]}")


async def reconcile(database: Database, payment: Payment, *, previous: Payment) -> None:
    """What the reconciler does: the per-table update in a transaction of its own."""
    async with database.transaction() as conn:
        await payment_rows.update_payment(conn, payment, previous=previous, reason="reconciled")


class TestReconcilerRacesTheAnswer:
    async def test_an_answer_racing_the_reconciler_leaves_one_record_and_the_loser_writes_nothing(
        self, database: Database, other: Database
    ) -> None:
        tries = await attempts_with_keys(database)
        answers = [settled(first, PaymentStatus.APPROVED) for first in tries]
        reconciled = [
            replace(settled(first, PaymentStatus.DECLINED), updated_at=NOW + timedelta(minutes=5)) for first in tries
        ]

        results = await asyncio.gather(
            *(
                step
                for n, first in enumerate(tries)
                for step in (
                    answer_with(
                        database,
                        answers[n],
                        previous=first,
                        key=key_of(f"k{n}"),
                        response=StoredResponse(201, b'{"status": "approved"}'),
                        events=2,
                    ),
                    reconcile(other, reconciled[n], previous=first),
                )
            ),
            return_exceptions=True,
        )

        for n, first in enumerate(tries):
            answer, reconciler = results[2 * n], results[2 * n + 1]
            rows = await rows_of(database, first.payment_id)
            claim = await find(database, key_of(f"k{n}"))
            assert claim is not None
            if answer is None:
                assert isinstance(reconciler, PaymentVersionConflict), reconciler
                assert await stored(database, first.payment_id) == answers[n]
                assert [r["to_status"] for r in rows["transitions"]] == ["processing", "approved"]
                assert [r["event_id"] for r in rows["outbox"]] == [f"{first.payment_id}-e0", f"{first.payment_id}-e1"]
                assert len(rows["due"]) == 1
                assert claim.state is ClaimState.COMPLETED
            else:
                assert isinstance(answer, PaymentVersionConflict), answer
                assert reconciler is None
                assert await stored(database, first.payment_id) == reconciled[n]
                assert [r["to_status"] for r in rows["transitions"]] == ["processing", "declined"]
                assert rows["outbox"] == []  # no event for the stale approval
                assert rows["due"] == []  # no order told "paid"
                assert claim.state is ClaimState.IN_FLIGHT  # not completed with the stale answer

    @pytest.mark.parametrize(("status", "events", "response"), SHAPES)
    async def test_a_stale_answer_of_any_shape_writes_nothing(
        self, database: Database, status: PaymentStatus, events: int, response: StoredResponse | None
    ) -> None:
        key = key_of("k")
        first = attempt()
        await pay_writes.record_attempt(database, first, claim=claim_of(key))
        await reconcile(database, approved(first), previous=first)
        before = await rows_of(database, first.payment_id)
        stale = settled(first, status)

        with pytest.raises(PaymentVersionConflict):
            await answer_with(database, stale, previous=first, key=key, response=response, events=events)

        assert await rows_of(database, first.payment_id) == before
        claim = await find(database, key)
        assert claim is not None
        assert claim.state is ClaimState.IN_FLIGHT


async def answer_the_old_way(
    database: Database,
    payment: Payment,
    *,
    previous: Payment,
    key: IdempotencyKey,
    response: StoredResponse | None,
    events: Sequence[OutboundEvent],
) -> None:
    """The per-table transaction the single statement replaces on PostgreSQL."""
    async with database.transaction() as conn:
        await payment_rows.update_payment(conn, payment, previous=previous, reason="gateway_answered")
        if response is None:
            await idempotency.release_key(conn, key)
        else:
            await idempotency.complete_key(conn, key, payment_id=payment.payment_id, response=response)
        await outbox.add_events(conn, events)


async def attempt_the_old_way(database: Database, payment: Payment, *, key: IdempotencyKey) -> None:
    async with database.transaction() as conn:
        claimed = await idempotency.claim_key(
            conn, key, fingerprint="f1", now=NOW, expires_at=NOW + TTL, payment_id=payment.payment_id
        )
        assert claimed.state is ClaimState.CLAIMED
        await payment_rows.insert_payment(conn, payment, reason="attempt_created")


LONG_MESSAGE = ("Déclinée: carte refusée 💳 " * 40)[:512]
ODD_BODY = b"\x00\xff\xfe{'\\\"}\x80 \xe2\x82"


class TestStoredAsTheTransactionStoresThem:
    @pytest.mark.parametrize(
        ("amount", "status", "events", "response", "message"),
        [
            (Money(Decimal("1.235"), "KWD"), PaymentStatus.APPROVED, 2, StoredResponse(201, ODD_BODY), "Approved."),
            (Money(Decimal("5000"), "JPY"), PaymentStatus.DECLINED, 1, StoredResponse(402, b""), LONG_MESSAGE),
            (Money(Decimal("0.01"), "USD"), PaymentStatus.HELD_FOR_REVIEW, 1, StoredResponse(202, ODD_BODY), ""),
            (Money(Decimal("99999999.99"), "USD"), PaymentStatus.UNKNOWN, 0, StoredResponse(202, b"{}"), "No answer."),
            (Money(Decimal("19.99"), "USD"), PaymentStatus.FAILED, 0, None, "The gateway was unreachable."),
        ],
    )
    async def test_the_single_statements_store_the_same_rows_as_the_per_table_transaction(
        self,
        database: Database,
        amount: Money,
        status: PaymentStatus,
        events: int,
        response: StoredResponse | None,
        message: str,
    ) -> None:
        written: list[dict[str, list[dict[str, Any]]]] = []
        for n, per_table in enumerate((False, True)):
            payment_id = f"pay_{n}"
            first = replace(
                attempt(payment_id, "o-same"), ref_id=f"ref{n}", amount=amount, card_last4=None, card_brand=None
            )
            answer = settled(first, status, message=message)
            key = key_of(f"k{n}")
            answer_events = events_of(answer, events, body=ODD_BODY)
            if per_table:
                await attempt_the_old_way(database, first, key=key)
                await answer_the_old_way(
                    database, answer, previous=first, key=key, response=response, events=answer_events
                )
            else:
                assert await pay_writes.record_attempt(database, first, claim=claim_of(key)) is None
                await pay_writes.record_answer(
                    database,
                    answer,
                    previous=first,
                    reason="gateway_answered",
                    key=key,
                    response=response,
                    events=answer_events,
                )
            assert await stored(database, payment_id) == answer
            written.append(await rows_of(database, payment_id))
            if status in {PaymentStatus.APPROVED, PaymentStatus.HELD_FOR_REVIEW, PaymentStatus.UNKNOWN}:
                # Free the order for the twin: the test is about the rows, not the one-attempt rule.
                async with database.transaction() as conn:
                    await conn.execute(
                        update(payments).where(payments.c.payment_id == payment_id).values(order_id=f"o-done-{n}")
                    )

        def anonymous(rows: dict[str, list[dict[str, Any]]], n: int) -> dict[str, list[dict[str, Any]]]:
            names = {
                f"pay_{n}": "<payment>",
                f"ref{n}": "<ref>",
                f"o-done-{n}": "<order>",
                "o-same": "<order>",
                f"k{n}": "<key>",
            }
            return {
                table: [
                    {
                        column: names.get(value, value) if isinstance(value, str) else value
                        for column, value in row.items()
                    }
                    for row in table_rows
                ]
                for table, table_rows in rows.items()
            }

        one_statement, transaction = anonymous(written[0], 0), anonymous(written[1], 1)
        for row in (*one_statement["outbox"], *transaction["outbox"]):
            row["event_id"] = row["event_id"].rpartition("-")[2]
        assert one_statement == transaction
        assert [row["data"] for row in one_statement["outbox"]] == [ODD_BODY + bytes([n]) for n in range(events)]
        assert [row["traceparent"] for row in one_statement["outbox"]][:1] == [None] * min(events, 1)
        if response is not None:
            assert one_statement["keys"][0]["response_body"] == response.body


class TestRelayBatches:
    async def test_rows_another_relay_re_leased_are_marked_published_once_each_and_never_claimed_again(
        self, database: Database, other: Database
    ) -> None:
        first = attempt()
        answer = settled(first, PaymentStatus.APPROVED)
        await pay_writes.record_attempt(database, first, claim=None)
        await answer_with(database, answer, previous=first, key=None, response=None, events=2)
        lease = timedelta(seconds=30)
        async with database.autocommit() as conn:
            slow = await outbox.claim_unpublished(conn, limit=10, now=NOW, lease_until=NOW + lease)
        later = NOW + 2 * lease  # the slow relay's lease ran out: the other relay takes the rows
        async with other.autocommit() as conn:
            fast = await outbox.claim_unpublished(conn, limit=10, now=later, lease_until=later + lease)
        assert [row.seq for row in fast] == [row.seq for row in slow]

        async with database.autocommit() as conn:
            await outbox.mark_published(conn, [row.seq for row in slow], published_at=later)
        async with other.autocommit() as conn:
            await outbox.mark_published(conn, [row.seq for row in fast], published_at=later)

        much_later = later + 10 * lease
        async with database.autocommit() as conn:
            assert await outbox.claim_unpublished(conn, limit=10, now=much_later, lease_until=much_later) == []
        rows = (await rows_of(database, first.payment_id))["outbox"]
        assert [(row["attempts"], row["lease_until"], row["published_at"]) for row in rows] == [(2, None, later)] * 2


async def due_ids(database: Database) -> list[str]:
    async with database.reading() as conn:
        found = await order_updates_due.fetch_due(
            conn, due_before=NOW + timedelta(days=1), now=NOW + timedelta(days=1), limit=100
        )
    return sorted(found)


@pytest.fixture
async def approvals(database: Database) -> list[str]:
    """Five approved payments whose orders are still to be told."""
    ids = []
    for n in range(5):
        first = attempt(f"pay_{n}", f"o{n}")
        await pay_writes.record_attempt(database, first, claim=None)
        await answer_with(database, approved(first), previous=first, key=None, response=None, events=0)
        ids.append(first.payment_id)
    assert await due_ids(database) == ids
    return ids


class TestClearancesCancelled:
    """The task deleting a batch is cancelled (the process shutting down) while callers wait on it."""

    async def _callers_and_deleter(
        self, clearances: order_updates_due.Clearances, ids: list[str]
    ) -> tuple[list[asyncio.Task[None]], asyncio.Task[Any]]:
        before = asyncio.all_tasks()
        callers = [asyncio.create_task(clearances.clear(payment_id)) for payment_id in ids]
        await asyncio.sleep(0)  # one turn: every caller has queued its id and the first started the delete
        deleters = asyncio.all_tasks() - before - set(callers)
        assert len(deleters) == 1
        return callers, deleters.pop()

    @pytest.mark.parametrize("turns", [0, 5])
    async def test_no_caller_waits_forever_nothing_unmet_is_deleted_and_the_next_clear_works(
        self, database: Database, approvals: list[str], turns: int
    ) -> None:
        clearances = order_updates_due.Clearances(database)
        # The rows are held by a write of our own, so the delete cannot finish before it is cancelled.
        async with database.transaction() as conn:
            await conn.execute(update(due_table).values(attempts=due_table.c.attempts))
            callers, deleter = await self._callers_and_deleter(clearances, approvals[:3])
            for _ in range(turns):  # 0: cancelled before it ran at all; 5: while it waits for the rows
                await asyncio.sleep(0)
            deleter.cancel()
            done, pending = await asyncio.wait(callers, timeout=10)
            assert pending == set(), "a caller still waits for a delete that will not come"
        assert all(caller.cancelled() or caller.exception() is not None for caller in done)
        assert await due_ids(database) == approvals  # nothing deleted: the sweep still tells these orders

        await asyncio.wait_for(clearances.clear(approvals[3]), timeout=10)  # later callers are served
        assert await due_ids(database) == [*approvals[:3], approvals[4]]


class TestLongGatewayText:
    """The gateway's own wording is not bounded by its API; the column is (PostgreSQL refuses longer text)."""

    @pytest.mark.parametrize("writer", ["pay_flow", "reconciler"])
    async def test_an_approval_with_a_message_longer_than_its_column_is_recorded_with_the_message_clipped(
        self, database: Database, writer: str
    ) -> None:
        key = key_of("k")
        first = attempt()
        await pay_writes.record_attempt(database, first, claim=claim_of(key))
        wording = "Ceci n'est pas une erreur: transaction approuvée ✓ " * 20
        answer = settled(first, PaymentStatus.APPROVED, message=wording)
        assert answer.gateway is not None
        if writer == "pay_flow":
            await answer_with(database, answer, previous=first, key=key, response=StoredResponse(201, b"{}"), events=2)
        else:
            await reconcile(database, answer, previous=first)

        column = payments.c.gateway_message.type
        assert isinstance(column, String)
        assert column.length is not None
        limit = column.length
        assert len(wording) > limit
        clipped = replace(answer.gateway, message=wording[:limit])
        assert await stored(database, first.payment_id) == replace(answer, gateway=clipped)
        rows = await rows_of(database, first.payment_id)
        assert (len(rows["transitions"]), len(rows["due"])) == (2, 1)
        assert len(rows["outbox"]) == (2 if writer == "pay_flow" else 0)


class TestReplayWhileTheAnswerIsStored:
    async def test_a_replay_reading_beside_the_answers_sees_each_whole_or_not_at_all(
        self, database: Database, other: Database
    ) -> None:
        tries = await attempts_with_keys(database)

        async def answer_all() -> None:
            for n, first in enumerate(tries):
                answer = settled(first, PaymentStatus.APPROVED)
                await answer_with(
                    database,
                    answer,
                    previous=first,
                    key=key_of(f"k{n}"),
                    response=StoredResponse(201, b'{"status": "approved"}'),
                    events=2,
                )

        writer = asyncio.create_task(answer_all())
        while not writer.done():
            for n, first in enumerate(tries):
                # Read in the order the replay reads: the key, then the payment, then (for the test) its events.
                claim = await find(other, key_of(f"k{n}"))
                payment = await stored(other, first.payment_id)
                events = len((await rows_of(other, first.payment_id))["outbox"])
                assert claim is not None
                assert payment is not None
                if claim.state is ClaimState.COMPLETED:  # completed: the payment and its events were there with it
                    assert claim.response == StoredResponse(201, b'{"status": "approved"}')
                    assert (payment.status, events) == (PaymentStatus.APPROVED, 2)
                if payment.status is PaymentStatus.PROCESSING:
                    assert claim.state is ClaimState.IN_FLIGHT
                assert events in (0, 2)
                if events == 0:
                    assert (claim.state, payment.status) == (ClaimState.IN_FLIGHT, PaymentStatus.PROCESSING)
            await asyncio.sleep(0)  # a turn for the writer, whose store may not yield on its own
        await writer
        finally_read = [await find(other, key_of(f"k{n}")) for n in range(RACERS)]
        assert [claim.state if claim else None for claim in finally_read] == [ClaimState.COMPLETED] * RACERS


async def test_answers_of_every_shape_in_turn_on_one_instance_each_write_their_own_rows(database: Database) -> None:
    """Each shape is its own statement, prepared once per connection: turns of all of them, twice over."""
    n = 0
    for _ in range(2):
        for status, events, response in SHAPES:
            key, first = key_of(f"k{n}"), attempt(f"pay_{n}", f"o{n}")
            await pay_writes.record_attempt(database, first, claim=claim_of(key))
            answer = settled(first, status)
            await answer_with(database, answer, previous=first, key=key, response=response, events=events)
            rows = await rows_of(database, first.payment_id)
            assert await stored(database, first.payment_id) == answer
            assert [r["to_status"] for r in rows["transitions"]] == ["processing", status.value]
            assert [r["event_id"] for r in rows["outbox"]] == [f"pay_{n}-e{e}" for e in range(events)]
            assert len(rows["due"]) == (1 if status is PaymentStatus.APPROVED else 0)
            claim = await find(database, key)
            if response is None:
                assert claim is None  # released: a retry is processed afresh
            else:
                assert claim is not None
                assert (claim.state, claim.response, claim.payment_id) == (
                    ClaimState.COMPLETED,
                    response,
                    first.payment_id,
                )
            n += 1
