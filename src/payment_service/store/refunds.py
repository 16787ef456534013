"""Refunds and voids of payments: the table, and the per-payment lock that keeps them below the capture.

`lock_payment` is how refunds of one payment are serialised across processes and replicas: on
PostgreSQL it takes the payment row `FOR UPDATE` until the transaction ends; on SQLite every write
transaction already holds the database's write lock (`BEGIN IMMEDIATE`). A caller reads the payment
and its refunds under that lock, checks the amount, and inserts the new refund in the same transaction.
"""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.domain.errors import PaymentVersionConflict
from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment
from payment_service.domain.refunds import Refund, RefundKind, RefundOrigin, RefundStatus
from payment_service.store import payments as payment_rows
from payment_service.store.database import UtcDateTime, metadata
from payment_service.store.tables import payments

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", String(32), primary_key=True),
    Column("payment_id", String(32), nullable=False),
    Column("kind", String(8), nullable=False),  # void | refund
    Column("amount", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("ref_id", String(20), nullable=False, unique=True),
    Column("reason", String(255), nullable=True),
    # The gateway's id of the refund (a void keeps the voided transaction's id): one record per transaction.
    Column("transaction_id", String(32), nullable=True, unique=True),
    Column("response_code", String(8), nullable=True),
    Column("reason_code", String(16), nullable=True),
    Column("gateway_message", String(512), nullable=True),
    Column("account_number", String(32), nullable=True),
    Column("account_type", String(32), nullable=True),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_refunds_payment_id", refunds.c.payment_id)
Index("ix_refunds_status_updated_at", refunds.c.status, refunds.c.updated_at)


def _row_values(refund: Refund) -> dict[str, Any]:
    result = refund.gateway or GatewayResult()
    return {
        "refund_id": refund.refund_id,
        "payment_id": refund.payment_id,
        "kind": refund.kind.value,
        "amount": str(refund.amount.amount),
        "currency": refund.amount.currency,
        "status": refund.status.value,
        "origin": refund.origin.value,
        "ref_id": refund.ref_id,
        "reason": refund.reason,
        "transaction_id": result.transaction_id,
        "response_code": result.response_code,
        "reason_code": result.reason_code,
        "gateway_message": result.message,
        "account_number": result.account_number,
        "account_type": result.account_type,
        "version": refund.version,
        "created_at": refund.created_at,
        "updated_at": refund.updated_at,
    }


def _refund_from_row(row: Mapping[Any, Any]) -> Refund:
    has_gateway = any(row[c] is not None for c in ("transaction_id", "response_code", "gateway_message"))
    return Refund(
        refund_id=row["refund_id"],
        payment_id=row["payment_id"],
        kind=RefundKind(row["kind"]),
        amount=Money(Decimal(row["amount"]), row["currency"]),
        status=RefundStatus(row["status"]),
        origin=RefundOrigin(row["origin"]),
        ref_id=row["ref_id"],
        reason=row["reason"],
        gateway=GatewayResult(
            transaction_id=row["transaction_id"],
            response_code=row["response_code"],
            reason_code=row["reason_code"],
            message=row["gateway_message"],
            account_number=row["account_number"],
            account_type=row["account_type"],
        )
        if has_gateway
        else None,
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def lock_payment(conn: AsyncConnection, payment_id: str) -> Payment | None:
    """The payment, locked against concurrent refunds until the transaction ends (see the module docstring)."""
    if conn.dialect.name == "sqlite":
        return await payment_rows.fetch_payment(conn, payment_id)
    row = (
        (await conn.execute(select(payments).where(payments.c.payment_id == payment_id).with_for_update()))
        .mappings()
        .first()
    )
    return payment_rows.payment_from_row(row) if row is not None else None


async def insert_refund(conn: AsyncConnection, refund: Refund) -> None:
    await conn.execute(insert(refunds).values(_row_values(refund)))


async def update_refund(conn: AsyncConnection, refund: Refund, *, previous: Refund) -> None:
    """Store `refund`, which must be `previous` one version on.

    Raises:
        PaymentVersionConflict: the refund changed since `previous` was read (the reconciler, or a webhook).
    """
    values = _row_values(refund)
    for fixed in ("refund_id", "payment_id", "kind", "ref_id", "origin", "created_at"):
        del values[fixed]
    result = await conn.execute(
        update(refunds)
        .where(refunds.c.refund_id == refund.refund_id, refunds.c.version == previous.version)
        .values(values)
    )
    if result.rowcount != 1:
        raise PaymentVersionConflict(refund.payment_id)


async def fetch_refund(conn: AsyncConnection, refund_id: str) -> Refund | None:
    row = (await conn.execute(select(refunds).where(refunds.c.refund_id == refund_id))).mappings().first()
    return _refund_from_row(row) if row is not None else None


async def fetch_refunds_for_payment(conn: AsyncConnection, payment_id: str) -> list[Refund]:
    """Every refund of the payment, oldest first."""
    rows = (
        await conn.execute(
            select(refunds)
            .where(refunds.c.payment_id == payment_id)
            .order_by(refunds.c.created_at, refunds.c.refund_id)
        )
    ).mappings()
    return [_refund_from_row(row) for row in rows]


async def fetch_refund_by_transaction_id(conn: AsyncConnection, transaction_id: str) -> Refund | None:
    query = select(refunds).where(refunds.c.transaction_id == transaction_id)
    row = (await conn.execute(query)).mappings().first()
    return _refund_from_row(row) if row is not None else None


async def fetch_unsettled_refunds(conn: AsyncConnection, *, limit: int) -> list[Refund]:
    """Refunds in `unknown`, or `processing` (a crash may have left them), oldest first (for the reconciler)."""
    rows = (
        await conn.execute(
            select(refunds)
            .where(refunds.c.status.in_([RefundStatus.UNKNOWN.value, RefundStatus.PROCESSING.value]))
            .order_by(refunds.c.updated_at)
            .limit(limit)
        )
    ).mappings()
    return [_refund_from_row(row) for row in rows]
