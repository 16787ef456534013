"""Reconciliation leases: each unresolved payment is looked up at the gateway by one reconciler at a time.

Every worker runs a reconciler over the same store. Without a lease each would search the gateway for
every unknown payment (N workers, N times the reporting calls, which Authorize.Net throttles). A
reconciler leases its candidates before looking them up, as the outbox relay leases its rows: a lease
is taken when the payment has none or only an expired one (one upsert per payment, so two reconcilers
never both win it) and given back when the round ends. A reconciler that dies holding leases only
delays those payments until the leases run out. A payment that changed since the candidates were
read (another reconciler settled it and gave its lease back meanwhile) is not taken.
"""

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.domain.payments import Payment
from payment_service.store.database import UtcDateTime
from payment_service.store.statements import Statement
from payment_service.store.tables import payments, reconciliation_leases

_leases = reconciliation_leases


def _claim(insert: Any) -> Any:
    statement = insert(_leases)
    return statement.on_conflict_do_update(
        index_elements=[_leases.c.payment_id],
        set_={"lease_until": statement.excluded.lease_until},
        where=_leases.c.lease_until < bindparam("b_now", type_=UtcDateTime),
    )


# Inserts a lease, or takes over an expired one; matches no row when another reconciler holds it.
_CLAIM = Statement(
    {"sqlite": _claim(sqlite_insert), "postgresql": _claim(postgresql_insert), "default": _claim(sqlite_insert)},
    column_keys=("payment_id", "lease_until"),
)
_VERSION = Statement(select(payments.c.version).where(payments.c.payment_id == bindparam("b_payment_id")))
_RELEASE = Statement(delete(_leases).where(_leases.c.payment_id == bindparam("b_payment_id")))


async def claim_for_reconciliation(
    conn: AsyncConnection, candidates: Sequence[Payment], *, now: datetime, lease_until: datetime
) -> set[str]:
    """Lease the candidates no other reconciler holds and nobody changed since they were read.

    Call in a write transaction of its own; returns the ids now leased to the caller, who gives them
    back with `release_reconciliation`.
    """
    claimed: set[str] = set()
    changed: list[str] = []
    for payment in candidates:
        lease = {"payment_id": payment.payment_id, "lease_until": lease_until, "b_now": now}
        if await _CLAIM.execute(conn, lease) != 1:
            continue
        row = await _VERSION.fetch_one(conn, {"b_payment_id": payment.payment_id})
        if row is not None and row[0] == payment.version:
            claimed.add(payment.payment_id)
        else:
            changed.append(payment.payment_id)
    await release_reconciliation(conn, changed)
    return claimed


async def release_reconciliation(conn: AsyncConnection, payment_ids: Collection[str]) -> None:
    """Give leases back, so the next round (of any reconciler) may look at the payments again."""
    if payment_ids:
        await _RELEASE.execute_many(conn, [{"b_payment_id": payment_id} for payment_id in payment_ids])
