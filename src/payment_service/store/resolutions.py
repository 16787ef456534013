"""Manual resolutions: an operator's decision on a payment, with who made it, when and why.

Written in the transaction that changes the payment (its transition row names the reason
`manual_resolution`), so the decision and its record never part.
"""

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.domain.payments import Payment
from payment_service.store.database import UtcDateTime, metadata

payment_resolutions = Table(
    "payment_resolutions",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("payment_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),  # the payment's version this decision made
    Column("from_status", String(32), nullable=False),
    Column("to_status", String(32), nullable=False),
    Column("transaction_id", String(32), nullable=True),
    Column("actor", String(64), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("resolved_at", UtcDateTime, nullable=False),
)
Index("ix_payment_resolutions_payment_id", payment_resolutions.c.payment_id)


async def add_resolution(
    conn: AsyncConnection, payment: Payment, *, previous: Payment, actor: str, reason: str
) -> None:
    await conn.execute(
        payment_resolutions.insert().values(
            payment_id=payment.payment_id,
            version=payment.version,
            from_status=previous.status.value,
            to_status=payment.status.value,
            transaction_id=payment.gateway.transaction_id if payment.gateway is not None else None,
            actor=actor,
            reason=reason,
            resolved_at=payment.updated_at,
        )
    )
