"""Payment attempts and their transitions: inserted before the gateway call, updated once it answered.

Functions take an open connection, so the caller (the service) owns the transaction; every status change
writes a `payment_transitions` row in the same transaction. Updates are guarded by `version`, so a
reconciler and a slow request never overwrite each other. Every approval also records, in its own
transaction, that the order must still be told (`order_updates_due.py`): whichever flow approved it.
"""

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.domain.errors import PaymentInProgress, PaymentVersionConflict
from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.store.order_updates_due import add_due
from payment_service.store.statements import Statement
from payment_service.store.tables import payment_transitions, payments

_ROW_COLUMNS = tuple(column.key for column in payments.columns)
_FIXED_COLUMNS = ("payment_id", "order_id", "customer_id", "created_at", "invoice_number", "ref_id")
# Built and compiled once (`store/statements.py`): through SQLAlchemy each statement cost more CPU than running it.
_INSERT_PAYMENT = Statement(insert(payments), column_keys=_ROW_COLUMNS)
# inline(): no `RETURNING seq` on PostgreSQL, nobody reads the new key.
_INSERT_TRANSITION = Statement(
    insert(payment_transitions).inline(),
    column_keys=("payment_id", "from_status", "to_status", "version", "reason", "occurred_at"),
)
# The columns an update sets: all but those fixed when the attempt was created.
UPDATED_COLUMNS = tuple(key for key in _ROW_COLUMNS if key not in _FIXED_COLUMNS)
# Executed with the columns to set as parameters, next to b_payment_id and b_version.
_UPDATE_PAYMENT = Statement(
    update(payments).where(
        payments.c.payment_id == bindparam("b_payment_id"), payments.c.version == bindparam("b_version")
    ),
    column_keys=UPDATED_COLUMNS,
)
_SELECT_PAYMENT = Statement(select(payments).where(payments.c.payment_id == bindparam("b_payment_id")))


# The gateway's wording is not bounded by its API, its column is: PostgreSQL refuses longer text (the
# answer would go unrecorded), SQLite would keep it whole. Clipped, so both store the same.
_MESSAGE_TYPE = payments.c.gateway_message.type
_MESSAGE_LENGTH = _MESSAGE_TYPE.length if isinstance(_MESSAGE_TYPE, String) else None


def _gateway_columns(result: GatewayResult | None) -> dict[str, str | None]:
    if result is None:
        result = GatewayResult()
    message = result.message
    return {
        "transaction_id": result.transaction_id,
        "auth_code": result.auth_code,
        "response_code": result.response_code,
        "reason_code": result.reason_code,
        "gateway_message": message[:_MESSAGE_LENGTH] if message is not None else None,
        "avs_result": result.avs_result,
        "cvv_result": result.cvv_result,
        "account_number": result.account_number,
        "account_type": result.account_type,
    }


def _row_values(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "customer_id": payment.customer_id,
        "status": payment.status.value,
        "amount": str(payment.amount.amount),
        "currency": payment.amount.currency,
        "invoice_number": payment.invoice_number,
        "ref_id": payment.ref_id,
        "card_last4": payment.card_last4,
        "card_brand": payment.card_brand,
        "captured_amount": str(payment.captured_amount),
        "refunded_amount": str(payment.refunded_amount),
        "version": payment.version,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
        "sent_at": payment.sent_at,
        **_gateway_columns(payment.gateway),
    }


def payment_from_row(row: Mapping[Any, Any]) -> Payment:
    has_gateway = any(row[c] is not None for c in ("transaction_id", "response_code", "reason_code", "gateway_message"))
    return Payment(
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        customer_id=row["customer_id"],
        status=PaymentStatus(row["status"]),
        amount=Money(Decimal(row["amount"]), row["currency"]),
        invoice_number=row["invoice_number"],
        ref_id=row["ref_id"],
        card_last4=row["card_last4"],
        card_brand=row["card_brand"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        gateway=GatewayResult(
            transaction_id=row["transaction_id"],
            auth_code=row["auth_code"],
            response_code=row["response_code"],
            reason_code=row["reason_code"],
            message=row["gateway_message"],
            avs_result=row["avs_result"],
            cvv_result=row["cvv_result"],
            account_number=row["account_number"],
            account_type=row["account_type"],
        )
        if has_gateway
        else None,
        sent_at=row["sent_at"],
        captured_amount=Decimal(row["captured_amount"]),
        refunded_amount=Decimal(row["refunded_amount"]),
    )


def attempt_params(payment: Payment, *, reason: str) -> dict[str, Any]:
    """Parameters of a new attempt's row (`p_<column>`) and its first transition's reason (`t_reason`)."""
    return {f"p_{name}": value for name, value in _row_values(payment).items()} | {"t_reason": reason}


def answer_params(payment: Payment, *, previous: Payment, reason: str) -> dict[str, Any]:
    """Parameters of the update of `previous` to `payment` and of its transition.

    `p_<column>` for the columns set, `b_payment_id` and `b_version` for the row, `t_from_status` and
    `t_reason` for the transition.
    """
    values = _row_values(payment)
    return {f"p_{name}": values[name] for name in UPDATED_COLUMNS} | {
        "b_payment_id": payment.payment_id,
        "b_version": previous.version,
        "t_from_status": previous.status.value,
        "t_reason": reason,
    }


async def insert_payment(conn: AsyncConnection, payment: Payment, *, reason: str) -> None:
    """Insert a new attempt and its first transition.

    Raises:
        PaymentInProgress: the order already has an attempt that is processing, unknown, held or approved.
    """
    try:
        await _INSERT_PAYMENT.execute(conn, _row_values(payment))
    except IntegrityError as exc:
        raise PaymentInProgress(payment.order_id) from exc
    await _add_transition(conn, payment, from_status=None, reason=reason)


async def update_payment(conn: AsyncConnection, payment: Payment, *, previous: Payment, reason: str) -> None:
    """Store `payment` (status, gateway details, amounts), which must be `previous` one version on.

    Raises:
        PaymentVersionConflict: someone else changed the payment since `previous` was read.
    """
    values = _row_values(payment)
    for fixed in _FIXED_COLUMNS:
        del values[fixed]
    values["b_payment_id"] = payment.payment_id
    values["b_version"] = previous.version
    if await _UPDATE_PAYMENT.execute(conn, values) != 1:
        raise PaymentVersionConflict(payment.payment_id)
    await _add_transition(conn, payment, from_status=previous.status, reason=reason)
    if order_update_due(payment, previous=previous):
        await add_due(conn, payment.payment_id, due_at=payment.updated_at)


def order_update_due(payment: Payment, *, previous: Payment) -> bool:
    """Whether storing `payment` over `previous` approves it: its order must then be told (`order_updates_due`)."""
    return payment.status is PaymentStatus.APPROVED and previous.status is not PaymentStatus.APPROVED


async def _add_transition(
    conn: AsyncConnection, payment: Payment, *, from_status: PaymentStatus | None, reason: str
) -> None:
    await _INSERT_TRANSITION.execute(
        conn,
        {
            "payment_id": payment.payment_id,
            "from_status": from_status.value if from_status is not None else None,
            "to_status": payment.status.value,
            "version": payment.version,
            "reason": reason,
            "occurred_at": payment.updated_at,
        },
    )


async def fetch_payment(conn: AsyncConnection, payment_id: str) -> Payment | None:
    row = await _SELECT_PAYMENT.fetch_one(conn, {"b_payment_id": payment_id})
    return payment_from_row(dict(zip(_ROW_COLUMNS, row, strict=True))) if row is not None else None


async def fetch_payments_for_order(conn: AsyncConnection, order_id: str) -> list[Payment]:
    """Every attempt for the order, oldest first."""
    rows = (
        await conn.execute(
            select(payments)
            .where(payments.c.order_id == order_id)
            .order_by(payments.c.created_at, payments.c.payment_id)
        )
    ).mappings()
    return [payment_from_row(row) for row in rows]


async def fetch_payments_by_status(
    conn: AsyncConnection, statuses: Collection[PaymentStatus], *, updated_before: datetime, limit: int
) -> Sequence[Payment]:
    """Attempts in one of `statuses` not changed since `updated_before`, oldest first (for the reconciler)."""
    rows = (
        await conn.execute(
            select(payments)
            .where(payments.c.status.in_([s.value for s in statuses]), payments.c.updated_at < updated_before)
            .order_by(payments.c.updated_at)
            .limit(limit)
        )
    ).mappings()
    return [payment_from_row(row) for row in rows]


async def count_payments_by_status(conn: AsyncConnection, status: PaymentStatus) -> int:
    """How many payments are in `status` now (for gauges)."""
    result = await conn.execute(select(func.count()).select_from(payments).where(payments.c.status == status.value))
    return int(result.scalar_one())


async def fetch_payment_ids_by_transaction_id(conn: AsyncConnection, transaction_id: str) -> list[str]:
    """The payments recording gateway transaction `transaction_id` (at most one, unless something went wrong)."""
    rows = await conn.execute(select(payments.c.payment_id).where(payments.c.transaction_id == transaction_id))
    return [row[0] for row in rows]


async def fetch_latest_sent_charge(conn: AsyncConnection) -> Payment | None:
    """The most recently changed approved payment with its gateway transaction and sending time, or None.

    Its transaction's submit time against our `sent_at` tells how the gateway's clock stands to ours.
    """
    row = (
        (
            await conn.execute(
                select(payments)
                .where(
                    payments.c.status == PaymentStatus.APPROVED.value,
                    payments.c.transaction_id.is_not(None),
                    payments.c.sent_at.is_not(None),
                )
                .order_by(payments.c.updated_at.desc())
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return payment_from_row(row) if row is not None else None


async def fetch_payment_by_ref_id(conn: AsyncConnection, ref_id: str) -> Payment | None:
    """The attempt that sent `ref_id` (unique per attempt) to the gateway."""
    row = (await conn.execute(select(payments).where(payments.c.ref_id == ref_id))).mappings().first()
    return payment_from_row(row) if row is not None else None
