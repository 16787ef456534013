"""The pay flow's two writes: the attempt (with its key claim) and the gateway's answer (with key and events).

Each is one transaction of several statements. On PostgreSQL each round trip costs both the server and
the API more CPU than the statement itself, so there each write is ONE statement: data-modifying CTEs
(`WITH … INSERT … RETURNING`), run in autocommit, which PostgreSQL applies atomically, all or nothing,
like the transaction it replaces. A payment then costs three statements on the server (the key read,
the attempt, the answer) instead of fourteen with their BEGINs and COMMITs. Each CTE after the first
acts only on the rows the first returned, so a taken key or a stale version writes nothing at all.

On SQLite (statements in-process, no round trips) and wherever the one statement cannot decide alone
(a key already there: replayed, in flight, expired or another request's), the same rows are written by
the per-table functions in a transaction, as everywhere else.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    String,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from payment_service.domain.errors import PaymentInProgress, PaymentVersionConflict
from payment_service.domain.events import OutboundEvent
from payment_service.domain.payments import Payment
from payment_service.store import idempotency, outbox
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database
from payment_service.store.idempotency import ClaimState, IdempotencyKey, KeyClaim, StoredResponse
from payment_service.store.statements import Statement
from payment_service.store.tables import idempotency_keys, order_updates_due, payment_transitions, payments


@dataclass(frozen=True, slots=True)
class NewKey:
    """An idempotency key to claim with the attempt, for a request with `fingerprint`."""

    key: IdempotencyKey
    fingerprint: str
    now: datetime
    expires_at: datetime


async def record_attempt(database: Database, attempt: Payment, *, claim: NewKey | None) -> KeyClaim | None:
    """Store the new attempt and claim its key, in one transaction; None when done.

    Returns what a concurrent request left on the key when it was not ours to claim (nothing is written).

    Raises:
        PaymentInProgress: the order already has an active attempt (nothing is written, the key not claimed).
    """
    if database.is_postgres:
        statement = _ATTEMPT_WITH_KEY if claim is not None else _ATTEMPT
        params = payment_rows.attempt_params(attempt, reason="attempt_created")
        if claim is not None:
            params |= _claim_params(claim, attempt.payment_id)
        try:
            async with database.autocommit() as conn:
                row = await statement.fetch_one(conn, params)
        except IntegrityError as exc:
            raise PaymentInProgress(attempt.order_id) from exc
        if row is not None and row[0] == 1:
            return None
        # The key exists: which request's, and whether it expired, the transaction below finds out.
    async with database.transaction() as conn:
        if claim is not None:
            found = await idempotency.claim_key(
                conn,
                claim.key,
                fingerprint=claim.fingerprint,
                now=claim.now,
                expires_at=claim.expires_at,
                payment_id=attempt.payment_id,
            )
            if found.state is not ClaimState.CLAIMED:
                return found
        await payment_rows.insert_payment(conn, attempt, reason="attempt_created")
    return None


async def record_answer(
    database: Database,
    payment: Payment,
    *,
    previous: Payment,
    reason: str,
    key: IdempotencyKey | None,
    response: StoredResponse | None,
    events: Sequence[OutboundEvent],
) -> None:
    """Store the gateway's answer: `payment`, its key and its events, in one transaction.

    `payment` is `previous` one version on; the key is completed with `response` (released when None).

    Raises:
        PaymentVersionConflict: the payment changed since `previous` (nothing is written).
    """
    if database.is_postgres:
        due = payment_rows.order_update_due(payment, previous=previous)
        key_write = None if key is None else ("complete" if response is not None else "release")
        statement = _answer_statement(due=due, key_write=key_write, events=len(events))
        params = payment_rows.answer_params(payment, previous=previous, reason=reason)
        if key is not None:
            params |= {"k_customer_id": key.customer_id, "k_key": key.key}
            if response is not None:
                params |= {
                    "k_payment_id": payment.payment_id,
                    "k_response_status": response.status_code,
                    "k_response_body": response.body,
                }
        for n, event in enumerate(events):
            params |= {f"o{n}_{name}": value for name, value in outbox.event_values(event).items()}
        async with database.autocommit() as conn:
            row = await statement.fetch_one(conn, params)
        if row is None or row[0] != 1:
            raise PaymentVersionConflict(payment.payment_id)
        return
    async with database.transaction() as conn:
        await payment_rows.update_payment(conn, payment, previous=previous, reason=reason)
        if key is not None:
            if response is None:
                await idempotency.release_key(conn, key)
            else:
                await idempotency.complete_key(conn, key, payment_id=payment.payment_id, response=response)
        await outbox.add_events(conn, events)


def _claim_params(claim: NewKey, payment_id: str) -> dict[str, Any]:
    values = idempotency.new_key_values(
        claim.key, fingerprint=claim.fingerprint, now=claim.now, expires_at=claim.expires_at, payment_id=payment_id
    )
    return {f"k_{name}": value for name, value in values.items()}


def _bind(column: Column[Any], prefix: str) -> Any:
    return bindparam(f"{prefix}{column.key}", type_=column.type)


def _transition_from(source: Any, *, from_status: Any) -> Select[Any]:
    """The transition row of the payment row `source` returned (to its status, at its version and update time)."""
    return select(
        source.c.payment_id,
        from_status,
        source.c.status,
        source.c.version,
        bindparam("t_reason", type_=String),
        source.c.updated_at,
    )


_TRANSITION_COLUMNS = ("payment_id", "from_status", "to_status", "version", "reason", "occurred_at")
_PAYMENT_COLUMNS = tuple(column.key for column in payments.columns)
_RETURNED = (payments.c.payment_id, payments.c.status, payments.c.version, payments.c.updated_at)


def _attempt_statement(*, with_key: bool) -> Statement:
    """Claim the key (DO NOTHING when it exists), insert the attempt and its first transition only when claimed.

    Answers one row: 1 when the attempt was stored, 0 when the key was there already (nothing written).
    """
    values = select(*(_bind(column, "p_") for column in payments.columns))
    ctes = []
    if with_key:
        key = (
            postgresql_insert(idempotency_keys)
            .values({c.key: _bind(c, "k_") for c in idempotency_keys.columns if not c.key.startswith("response_")})
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.key)
            .cte("claimed_key")
        )
        values = values.where(exists(select(key.c.key)))
        ctes.append(key)
    attempt = insert(payments).from_select(_PAYMENT_COLUMNS, values).returning(*_RETURNED).cte("attempt")
    transition = (
        insert(payment_transitions)
        .from_select(_TRANSITION_COLUMNS, _transition_from(attempt, from_status=literal(None, String)))
        .cte("first_transition")
    )
    answer = select(func.count()).select_from(attempt).add_cte(*ctes, attempt, transition)
    return Statement(answer)


_ATTEMPT = _attempt_statement(with_key=False)
_ATTEMPT_WITH_KEY = _attempt_statement(with_key=True)


_answers: dict[tuple[bool, str | None, int], Statement] = {}


def _answer_statement(*, due: bool, key_write: str | None, events: int) -> Statement:
    """The answer's statement of one shape (whether an order update is due, the key's write, how many events).

    It updates the payment if still at the version read; then, only if it did, writes its transition,
    the order update due (an approval), the key's completion or release, and the outbox rows.

    Answers one row: the number of payments updated (1, or 0 for a stale version: nothing written).
    Built once per shape and kept.
    """
    shape = (due, key_write, events)
    statement = _answers.get(shape)
    if statement is None:
        statement = _answers[shape] = _build_answer(*shape)
    return statement


def _build_answer(due: bool, key_write: str | None, events: int) -> Statement:
    updated = (
        update(payments)
        .where(
            payments.c.payment_id == bindparam("b_payment_id", type_=String),
            payments.c.version == bindparam("b_version", type_=Integer),
        )
        .values({key: _bind(payments.c[key], "p_") for key in payment_rows.UPDATED_COLUMNS})
        .returning(*_RETURNED)
        .cte("updated")
    )
    did_update = exists(select(updated.c.payment_id))
    ctes: list[Any] = [
        insert(payment_transitions)
        .from_select(
            _TRANSITION_COLUMNS,
            _transition_from(updated, from_status=bindparam("t_from_status", type_=String)),
        )
        .cte("transition")
    ]
    if due:
        ctes.append(
            insert(order_updates_due)
            .from_select(
                ("payment_id", "due_at", "attempts"), select(updated.c.payment_id, updated.c.updated_at, literal(0))
            )
            .cte("order_update_due")
        )
    key_matches = (
        idempotency_keys.c.customer_id == bindparam("k_customer_id", type_=String),
        idempotency_keys.c.key == bindparam("k_key", type_=String),
        did_update,
    )
    if key_write == "complete":
        ctes.append(
            update(idempotency_keys)
            .where(*key_matches)
            .values(
                state=idempotency.STATE_COMPLETED,
                payment_id=_bind(idempotency_keys.c.payment_id, "k_"),
                response_status=_bind(idempotency_keys.c.response_status, "k_"),
                response_body=_bind(idempotency_keys.c.response_body, "k_"),
            )
            .cte("completed_key")
        )
    elif key_write == "release":
        ctes.append(delete(idempotency_keys).where(*key_matches).cte("released_key"))
    if events:
        rows = [
            select(*(_bind(outbox.outbox.c[name], f"o{n}_") for name in outbox.EVENT_COLUMNS)).where(did_update)
            for n in range(events)
        ]
        ctes.append(
            insert(outbox.outbox)
            .from_select(outbox.EVENT_COLUMNS, rows[0] if events == 1 else union_all(*rows))
            .cte("events")
        )
    return Statement(select(func.count()).select_from(updated).add_cte(updated, *ctes))
