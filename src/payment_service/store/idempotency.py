"""Idempotency keys: claimed with the payment attempt, completed with the response in the result's transaction.

A key is scoped to its customer. A claim finds one of four things: nothing (the key is now ours, in
flight), the same request completed (replay its stored status and body), the same request still in flight,
or a different request (by fingerprint). Expired keys are taken over as if absent. `find_key` answers the
same question without writing, so a replay costs no write transaction. A request that ends in an error
before anything was charged releases its key, so a retry with the same key is processed afresh.

Statements are built once with bind parameters: building one per call cost more CPU than running it.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import RowMapping, bindparam, delete, insert, select, update
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


_KEY_MATCHES = (
    idempotency_keys.c.customer_id == bindparam("b_customer_id"),
    idempotency_keys.c.key == bindparam("b_key"),
)
_SELECT_KEY = select(
    idempotency_keys.c.fingerprint,
    idempotency_keys.c.state,
    idempotency_keys.c.response_status,
    idempotency_keys.c.response_body,
    idempotency_keys.c.payment_id,
    idempotency_keys.c.expires_at,
).where(*_KEY_MATCHES)
_INSERT_KEY = insert(idempotency_keys)
# Executed with the columns to set as parameters, next to b_customer_id and b_key.
_UPDATE_KEY = update(idempotency_keys).where(*_KEY_MATCHES)
_DELETE_KEY = delete(idempotency_keys).where(*_KEY_MATCHES)


def _key_params(key: IdempotencyKey) -> dict[str, str]:
    return {"b_customer_id": key.customer_id, "b_key": key.key}


async def find_key(conn: AsyncConnection, key: IdempotencyKey, *, fingerprint: str, now: datetime) -> KeyClaim | None:
    """What a claim of `key` would find, without claiming it: None when the key is free (absent or expired)."""
    row = (await conn.execute(_SELECT_KEY, _key_params(key))).mappings().first()
    return None if row is None else _classify(row, fingerprint=fingerprint, now=now)


def _classify(row: RowMapping, *, fingerprint: str, now: datetime) -> KeyClaim | None:
    if row["expires_at"] <= now:
        return None
    if row["fingerprint"] != fingerprint:
        return KeyClaim(ClaimState.MISMATCH)
    if row["state"] == _COMPLETED:
        response = StoredResponse(row["response_status"], row["response_body"])
        return KeyClaim(ClaimState.COMPLETED, response, row["payment_id"])
    return KeyClaim(ClaimState.IN_FLIGHT)


async def claim_key(
    conn: AsyncConnection, key: IdempotencyKey, *, fingerprint: str, now: datetime, expires_at: datetime
) -> KeyClaim:
    """Claim `key` for a request with `fingerprint`, unless it is taken; call in a write transaction."""
    row = (await conn.execute(_SELECT_KEY, _key_params(key))).mappings().first()
    if row is not None:
        found = _classify(row, fingerprint=fingerprint, now=now)
        if found is not None:
            return found
        await release_key(conn, key)  # expired: taken over
    try:
        await conn.execute(
            _INSERT_KEY,
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
        _UPDATE_KEY,
        {
            **_key_params(key),
            "state": _COMPLETED,
            "payment_id": payment_id,
            "response_status": response.status_code,
            "response_body": response.body,
        },
    )


async def release_key(conn: AsyncConnection, key: IdempotencyKey) -> None:
    await conn.execute(_DELETE_KEY, _key_params(key))


async def delete_expired_keys(conn: AsyncConnection, *, now: datetime) -> int:
    result = await conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
    return int(result.rowcount)
