"""Idempotency keys: claimed before any work, completed with the response in the result's transaction.

A key is scoped to its customer. A claim finds one of four things: nothing (the key is now ours, in
flight), the same request completed (replay its stored status and body), the same request still in flight,
or a different request (by fingerprint). Expired keys are taken over as if absent. A request that ends in an
error before anything was charged releases its key, so a retry with the same key is processed afresh.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.store.tables import idempotency_keys

_IN_FLIGHT = "in_flight"
_COMPLETED = "completed"


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
    payment_id: str | None = None  # with COMPLETED


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    customer_id: str
    key: str


async def claim_key(
    conn: AsyncConnection, key: IdempotencyKey, *, fingerprint: str, now: datetime, expires_at: datetime
) -> KeyClaim:
    """Claim `key` for a request with `fingerprint`, unless it is taken; call in a write transaction."""
    row = (
        (
            await conn.execute(
                select(
                    idempotency_keys.c.fingerprint,
                    idempotency_keys.c.state,
                    idempotency_keys.c.response_status,
                    idempotency_keys.c.response_body,
                    idempotency_keys.c.payment_id,
                    idempotency_keys.c.expires_at,
                ).where(idempotency_keys.c.customer_id == key.customer_id, idempotency_keys.c.key == key.key)
            )
        )
        .mappings()
        .first()
    )
    if row is not None and row["expires_at"] > now:
        if row["fingerprint"] != fingerprint:
            return KeyClaim(ClaimState.MISMATCH)
        if row["state"] == _COMPLETED:
            response = StoredResponse(row["response_status"], row["response_body"])
            return KeyClaim(ClaimState.COMPLETED, response, row["payment_id"])
        return KeyClaim(ClaimState.IN_FLIGHT)
    if row is not None:
        await release_key(conn, key)
    try:
        await conn.execute(
            insert(idempotency_keys),
            {
                "customer_id": key.customer_id,
                "key": key.key,
                "fingerprint": fingerprint,
                "state": _IN_FLIGHT,
                "created_at": now,
                "expires_at": expires_at,
            },
        )
    except IntegrityError:
        # Claimed by another instance between our read and insert (PostgreSQL; SQLite writers are serial).
        return KeyClaim(ClaimState.IN_FLIGHT)
    return KeyClaim(ClaimState.CLAIMED)


async def complete_key(
    conn: AsyncConnection, key: IdempotencyKey, *, payment_id: str, response: StoredResponse
) -> None:
    await conn.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.customer_id == key.customer_id, idempotency_keys.c.key == key.key)
        .values(
            state=_COMPLETED,
            payment_id=payment_id,
            response_status=response.status_code,
            response_body=response.body,
        )
    )


async def release_key(conn: AsyncConnection, key: IdempotencyKey) -> None:
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.customer_id == key.customer_id, idempotency_keys.c.key == key.key
        )
    )


async def delete_expired_keys(conn: AsyncConnection, *, now: datetime) -> int:
    result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
    return int(result.rowcount)
