"""Payments: the version-guarded upsert that also moves the order, and reads.

`put_payment` is one short transaction of few statements: take the single writer (SQLite) or lock
the order row (PostgreSQL), read the order with the stored payment in one query, then insert or
update the payment and update the order. Concurrent writes of one payment touch the same order row, so they are
serialised and the highest version wins.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from reference_db_service.errors import (
    CustomerMismatch,
    PaymentConflict,
    PaymentNotFound,
    PaymentOrderMismatch,
    UnknownOrder,
)
from reference_db_service.money import format_minor_units, to_minor_units
from reference_db_service.rules import (
    OrderConflict,
    PaymentWrite,
    decide_payment_write,
    react_to_payment,
)
from reference_db_service.schemas import GatewayDetails, PaymentPutRequest, PaymentRecord
from reference_db_service.store.database import Database
from reference_db_service.store.orders import order_payment_state, write_order_payment_state
from reference_db_service.store.statements import Statement
from reference_db_service.store.tables import orders, payments

log = structlog.get_logger(__name__)

_stored = payments.alias("stored")
_current = payments.alias("current")


async def put_payment(db: Database, payment_id: str, request: PaymentPutRequest) -> tuple[PaymentRecord, PaymentWrite]:
    """Create or update the payment unless the stored version is the same or newer.

    Idempotent: a repeated or stale version changes nothing and answers the stored record. A
    written payment moves its order in the same transaction (`rules.react_to_payment`); an
    approval the order cannot take (cancelled, or paid by another payment) is still recorded, as
    the charge happened, and is logged for a person to look at.

    Raises:
        UnknownOrder: the order does not exist.
        CustomerMismatch: the payment's customer does not own the order.
        PaymentOrderMismatch: the payment id is already recorded for another order.
        PaymentConflict: the same new payment id was written for two orders at the same time.
    """
    return await db.write(_put_payment, payment_id, request)


async def read_payment(db: Database, payment_id: str) -> PaymentRecord:
    """Raises: PaymentNotFound."""
    record = await db.read(_select_payment, payment_id)
    if record is None:
        msg = f"payment {payment_id} does not exist"
        raise PaymentNotFound(msg)
    return record


async def list_payments(db: Database, order_id: int) -> list[PaymentRecord]:
    """The order's payments, oldest first; empty for an unknown order."""
    return await db.read(_select_payments, order_id)


# Statements are built once: building and cache-keying a statement per call costs more than running it.
_LOOKUP = Statement(
    select(
        orders.c.customer_id,
        orders.c.status,
        orders.c.payment_status,
        orders.c.payment_id,
        _current.c.created_at.label("current_created_at"),
        *(column.label(f"stored_{column.name}") for column in _stored.c),
    )
    .select_from(
        orders.outerjoin(_stored, _stored.c.id == bindparam("b_payment_id")).outerjoin(
            _current, _current.c.id == orders.c.payment_id
        )
    )
    .where(orders.c.id == bindparam("b_order_id"))
)
_LOCK_ORDER = select(orders.c.id).where(orders.c.id == bindparam("b_order_id")).with_for_update()
_VALUE_KEYS = (
    "order_id",
    "customer_id",
    "status",
    "amount_minor",
    "currency",
    "refunded_minor",
    "gateway",
    "version",
    "created_at",
    "updated_at",
    "recorded_at",
)
_INSERT = Statement(insert(payments), column_keys=("id", *_VALUE_KEYS))
# The version condition repeats the guard in SQL, so no interleaving could ever regress a record.
_UPDATE = Statement(
    update(payments).where(payments.c.id == bindparam("b_payment_id"), payments.c.version < bindparam("b_version")),
    column_keys=_VALUE_KEYS,
)
_SELECT_ONE = select(payments).where(payments.c.id == bindparam("b_payment_id"))
_SELECT_FOR_ORDER = (
    select(payments)
    .where(payments.c.order_id == bindparam("b_order_id"))
    .order_by(payments.c.created_at, payments.c.id)
)


def _put_payment(conn: Connection, payment_id: str, request: PaymentPutRequest) -> tuple[PaymentRecord, PaymentWrite]:
    keys = {"b_payment_id": payment_id, "b_order_id": request.order_id}
    if conn.dialect.name == "postgresql":
        # Lock first, then read in a new statement: a statement that waited for the lock reads the
        # joined payment from its old snapshot and would miss a payment inserted meanwhile.
        conn.execute(_LOCK_ORDER, keys)
    row = _checked(_LOOKUP.first(conn, keys), payment_id, request)
    decision = decide_payment_write(stored_version=row.stored_version, incoming_version=request.version)
    if decision is PaymentWrite.IGNORE:
        return _stored_record(row), decision
    values = {
        "order_id": request.order_id,
        "customer_id": request.customer_id,
        "status": request.status.value,
        "amount_minor": to_minor_units(request.amount, request.currency),
        "currency": request.currency,
        "refunded_minor": _minor_or_none(request.refunded_amount, request.currency),
        "gateway": None if request.gateway is None else request.gateway.model_dump(),
        "version": request.version,
        "created_at": request.created_at,
        "updated_at": request.updated_at,
        "recorded_at": datetime.now(UTC),
    }
    if decision is PaymentWrite.CREATE:
        try:
            _INSERT.rows(conn, {"id": payment_id, **values})
        except IntegrityError as exc:
            # Only PostgreSQL gets here: two new writes of one payment id for two different orders.
            msg = f"payment {payment_id} is being recorded for another order"
            raise PaymentConflict(msg) from exc
    else:
        _UPDATE.rows(conn, {"b_payment_id": payment_id, "b_version": request.version, **values})
    current = order_payment_state(row)
    reaction = react_to_payment(
        current,
        payment_id=payment_id,
        status=request.status,
        supersedes_current=row.current_created_at is None or row.current_created_at <= request.created_at,
    )
    if isinstance(reaction, OrderConflict):
        log.warning(
            "payment.order_conflicted",
            payment_id=payment_id,
            order_id=str(request.order_id),
            conflict=reaction.value,
        )
    elif reaction != current:
        write_order_payment_state(conn, request.order_id, reaction)
    return _record(payment_id, request), decision


def _select_payment(conn: Connection, payment_id: str) -> PaymentRecord | None:
    row = conn.execute(_SELECT_ONE, {"b_payment_id": payment_id}).first()
    return None if row is None else _payment_record(row)


def _select_payments(conn: Connection, order_id: int) -> list[PaymentRecord]:
    return [_payment_record(row) for row in conn.execute(_SELECT_FOR_ORDER, {"b_order_id": order_id})]


def _checked(row: Any | None, payment_id: str, request: PaymentPutRequest) -> Any:
    """The looked-up row, once the payment's references are known to hold."""
    if row is None:
        msg = f"order {request.order_id} does not exist"
        raise UnknownOrder(msg)
    if row.customer_id != request.customer_id:
        msg = f"customer {request.customer_id} does not own order {request.order_id}"
        raise CustomerMismatch(msg)
    if row.stored_id is not None and row.stored_order_id != request.order_id:
        msg = f"payment {payment_id} is recorded for order {row.stored_order_id}"
        raise PaymentOrderMismatch(msg)
    return row


def _record(payment_id: str, request: PaymentPutRequest) -> PaymentRecord:
    return PaymentRecord(
        id=payment_id,
        order_id=str(request.order_id),
        customer_id=str(request.customer_id),
        status=request.status,
        amount=format_minor_units(to_minor_units(request.amount, request.currency), request.currency),
        currency=request.currency,
        gateway=request.gateway,
        created_at=request.created_at,
        updated_at=request.updated_at,
        version=request.version,
        refunded_amount=_formatted_or_none(_minor_or_none(request.refunded_amount, request.currency), request.currency),
    )


def _stored_record(row: Any) -> PaymentRecord:
    return _from_mapping({column.name: getattr(row, f"stored_{column.name}") for column in _stored.c})


def _payment_record(row: Row[Any]) -> PaymentRecord:
    return _from_mapping(dict(row._mapping))


def _from_mapping(m: Mapping[str, Any]) -> PaymentRecord:
    gateway = m["gateway"]
    return PaymentRecord.model_validate(
        {
            "id": m["id"],
            "order_id": str(m["order_id"]),
            "customer_id": str(m["customer_id"]),
            "status": m["status"],
            "amount": format_minor_units(m["amount_minor"], m["currency"]),
            "currency": m["currency"],
            "gateway": None if gateway is None else GatewayDetails.model_validate(gateway),
            "created_at": m["created_at"],
            "updated_at": m["updated_at"],
            "version": m["version"],
            "refunded_amount": _formatted_or_none(m["refunded_minor"], m["currency"]),
        }
    )


def _minor_or_none(amount: Decimal | None, currency: str) -> int | None:
    return None if amount is None else to_minor_units(amount, currency)


def _formatted_or_none(units: int | None, currency: str) -> str | None:
    return None if units is None else format_minor_units(units, currency)
