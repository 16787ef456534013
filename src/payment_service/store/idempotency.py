"""Idempotency keys: claimed with the payment attempt, completed with the response in the result's transaction.

A key is scoped to its customer. A claim finds one of four things: nothing (the key is now ours, in
flight), the same request completed (replay its stored status and body), the same request still in flight,
or a different request (by fingerprint). Expired keys are taken over as if absent. `find_key` answers the
same question without writing, so a replay costs no write transaction. A request that ends in an error
before anything was charged releases its key, so a retry with the same key is processed afresh.

Statements are built and compiled once (`store/statements.py`); a fresh key is claimed by one INSERT.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.store.statements import Row, Statement
from payment_service.store.tables import idempotency_keys

STATE_IN_FLIGHT = "in_flight"
STATE_COMPLETED = "completed"


class ClaimState(StrEnum):
    CLAIMED = "claimed"
    COMPLETED = "completed"
    IN_FLIGHT = "in_flight"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: bytes


@dataclass(frozen=True, slots=True)
class KeyClaim:
    state: ClaimState
    response: StoredResponse | None = None  # with COMPLETED
    payment_id: str | None = None  # with COMPLETED, and IN_FLIGHT when the claim named its attempt


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    customer_id: str
    key: str


_KEY_MATCHES = (
    idempotency_keys.c.customer_id == bindparam("b_customer_id"),
    idempotency_keys.c.key == bindparam("b_key"),
)
_SELECT_KEY = Statement(
    select(
        idempotency_keys.c.fingerprint,
        idempotency_keys.c.state,
        idempotency_keys.c.response_status,
        idempotency_keys.c.response_body,
        idempotency_keys.c.payment_id,
        idempotency_keys.c.expires_at,
    ).where(*_KEY_MATCHES)
)
_NEW_KEY_COLUMNS = ("customer_id", "key", "fingerprint", "state", "payment_id", "created_at", "expires_at")
# Inserted first and read only when taken: a claim of a fresh key is one statement. DO NOTHING, not an
# IntegrityError, as PostgreSQL aborts the whole transaction on an error.
_INSERT_KEY = Statement(
    {
        "sqlite": sqlite_insert(idempotency_keys).on_conflict_do_nothing(),
        "postgresql": postgresql_insert(idempotency_keys).on_conflict_do_nothing(),
        "default": insert(idempotency_keys),
    },
    column_keys=_NEW_KEY_COLUMNS,
)
_COMPLETE_KEY = Statement(
    update(idempotency_keys).where(*_KEY_MATCHES),
    column_keys=("state", "payment_id", "response_status", "response_body"),
)
_DELETE_KEY = Statement(delete(idempotency_keys).where(*_KEY_MATCHES))


def _key_params(key: IdempotencyKey) -> dict[str, str]:
    return {"b_customer_id": key.customer_id, "b_key": key.key}


async def find_key(conn: AsyncConnection, key: IdempotencyKey, *, fingerprint: str, now: datetime) -> KeyClaim | None:
    """What a claim of `key` would find, without claiming it: None when the key is free (absent or expired)."""
    row = await _SELECT_KEY.fetch_one(conn, _key_params(key))
    return None if row is None else _classify(row, fingerprint=fingerprint, now=now)


def _classify(row: Row, *, fingerprint: str, now: datetime) -> KeyClaim | None:
    stored_fingerprint, state, response_status, response_body, payment_id, expires_at = row
    if expires_at <= now:
        return None
    if stored_fingerprint != fingerprint:
        return KeyClaim(ClaimState.MISMATCH)
    if state == STATE_COMPLETED:
        return KeyClaim(ClaimState.COMPLETED, StoredResponse(response_status, response_body), payment_id)
    return KeyClaim(ClaimState.IN_FLIGHT, None, payment_id)


async def claim_key(
    conn: AsyncConnection,
    key: IdempotencyKey,
    *,
    fingerprint: str,
    now: datetime,
    expires_at: datetime,
    payment_id: str | None = None,
) -> KeyClaim:
    """Claim `key` for a request with `fingerprint`, unless it is taken; call in a write transaction.

    `payment_id` names the attempt the key is claimed for, so that a retry can still be answered from
    the payment if the request that claimed it never completes the key (a crash after sending).
    """
    new_key = new_key_values(key, fingerprint=fingerprint, now=now, expires_at=expires_at, payment_id=payment_id)
    if await _INSERT_KEY.execute(conn, new_key) == 1:
        return KeyClaim(ClaimState.CLAIMED)
    row = await _SELECT_KEY.fetch_one(conn, _key_params(key))
    if row is not None:
        found = _classify(row, fingerprint=fingerprint, now=now)
        if found is not None:
            return found
        await release_key(conn, key)  # expired: taken over
    if await _INSERT_KEY.execute(conn, new_key) == 1:
        return KeyClaim(ClaimState.CLAIMED)
    # Claimed by another instance since our read (PostgreSQL; SQLite writers are serial).
    return KeyClaim(ClaimState.IN_FLIGHT)


def new_key_values(
    key: IdempotencyKey, *, fingerprint: str, now: datetime, expires_at: datetime, payment_id: str | None
) -> dict[str, object]:
    """The row of a key newly claimed (in flight), by column."""
    return {
        "customer_id": key.customer_id,
        "key": key.key,
        "fingerprint": fingerprint,
        "state": STATE_IN_FLIGHT,
        "payment_id": payment_id,
        "created_at": now,
        "expires_at": expires_at,
    }


async def complete_key(
    conn: AsyncConnection, key: IdempotencyKey, *, payment_id: str, response: StoredResponse
) -> None:
    await _COMPLETE_KEY.execute(
        conn,
        {
            **_key_params(key),
            "state": STATE_COMPLETED,
            "payment_id": payment_id,
            "response_status": response.status_code,
            "response_body": response.body,
        },
    )


async def release_key(conn: AsyncConnection, key: IdempotencyKey) -> None:
    await _DELETE_KEY.execute(conn, _key_params(key))


async def delete_expired_keys(conn: AsyncConnection, *, now: datetime) -> int:
    result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
    return int(result.rowcount)
