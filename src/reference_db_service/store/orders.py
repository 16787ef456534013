"""Orders: create (prices copied from products), read, payment status updates, cancellation."""

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from reference_db_service.errors import (
    AlreadyExists,
    OrderAlreadyPaid,
    OrderCancelled,
    OrderNotFound,
    UnknownCustomer,
)
from reference_db_service.money import format_cents, to_cents
from reference_db_service.rules import OrderConflict, OrderPaymentState, price_lines, react_to_payment
from reference_db_service.schemas import OrderCreateRequest, OrderItemRecord, OrderPaymentUpdateRequest, OrderRecord
from reference_db_service.statuses import OrderPaymentStatus, OrderStatus
from reference_db_service.store.database import Database, advance_id_sequence
from reference_db_service.store.statements import Statement
from reference_db_service.store.tables import customers, order_items, orders, products

log = structlog.get_logger(__name__)

# Statements are built once: building and cache-keying a statement per call costs more than running it.
_SELECT_ORDER_FOR_UPDATE = Statement(select(orders).where(orders.c.id == bindparam("b_order_id")).with_for_update())
# The order and its items in one query: one row per item (one row of NULL items for an empty order).
_ORDER_WITH_ITEMS = (
    select(orders, order_items.c.product_id, order_items.c.quantity, order_items.c.unit_price_cents)
    .select_from(orders.outerjoin(order_items, order_items.c.order_id == orders.c.id))
    .where(orders.c.id == bindparam("b_order_id"))
    .order_by(order_items.c.line_no)
)
_SELECT_ORDER_WITH_ITEMS = Statement(_ORDER_WITH_ITEMS)
# PostgreSQL cannot lock the nullable side of an outer join; the order row is what must be locked.
_SELECT_ORDER_WITH_ITEMS_FOR_UPDATE = Statement(_ORDER_WITH_ITEMS.with_for_update(of=orders))
_SELECT_ITEMS = Statement(
    select(order_items.c.product_id, order_items.c.quantity, order_items.c.unit_price_cents)
    .where(order_items.c.order_id == bindparam("b_order_id"))
    .order_by(order_items.c.line_no)
)
_PAYMENT_STATE_KEYS = ("status", "payment_status", "payment_id", "updated_at")
_UPDATE_PAYMENT_STATE = Statement(
    update(orders).where(orders.c.id == bindparam("b_order_id")), column_keys=_PAYMENT_STATE_KEYS
)


async def create_order(db: Database, request: OrderCreateRequest) -> OrderRecord:
    """Insert a pending, unpaid order whose unit prices are the products' current prices.

    Raises:
        UnknownCustomer, UnknownProduct: the body names what does not exist.
        AlreadyExists: the explicit id is taken.
    """
    try:
        return await db.write(_insert_order, request)
    except IntegrityError as exc:
        msg = f"order {request.id} already exists"
        raise AlreadyExists(msg) from exc


async def read_order(db: Database, order_id: int) -> OrderRecord:
    """Raises: OrderNotFound."""
    return await db.read(_read_order, order_id)


async def update_order_payment(db: Database, order_id: int, request: OrderPaymentUpdateRequest) -> OrderRecord:
    """Apply a payment status to an order (idempotent; see `rules.react_to_payment`).

    A stale update (a regression) leaves the order as it is and answers it.

    Raises:
        OrderNotFound: no such order.
        OrderCancelled: an approval for a cancelled order.
        OrderAlreadyPaid: an approval from another payment for a paid order.
    """
    return await db.write(_update_order_payment, order_id, request)


async def cancel_order(db: Database, order_id: int) -> OrderRecord:
    """Cancel a pending order; cancelling a cancelled order is a no-op.

    Raises:
        OrderNotFound: no such order.
        OrderAlreadyPaid: the order is paid (refund it through the payment service instead).
    """
    return await db.write(_cancel_order, order_id)


def _insert_order(conn: Connection, request: OrderCreateRequest) -> OrderRecord:
    if conn.execute(select(customers.c.id).where(customers.c.id == request.customer_id)).first() is None:
        msg = f"customer {request.customer_id} does not exist"
        raise UnknownCustomer(msg)
    product_ids = {item.product_id for item in request.items}
    price_rows = conn.execute(select(products.c.id, products.c.price_cents).where(products.c.id.in_(product_ids)))
    prices = {row.id: row.price_cents for row in price_rows}
    lines = price_lines([(item.product_id, item.quantity) for item in request.items], prices)
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "customer_id": request.customer_id,
        "status": OrderStatus.PENDING.value,
        "payment_status": OrderPaymentStatus.UNPAID.value,
        "payment_id": None,
        "currency": request.currency,
        "shipping_cents": _cents_or_none(request.shipping_amount),
        "tax_cents": _cents_or_none(request.tax_amount),
        "created_at": now,
        "updated_at": now,
    }
    if request.id is not None:
        values["id"] = request.id
    row = conn.execute(insert(orders).values(values).returning(*orders.c)).one()
    conn.execute(
        insert(order_items),
        [
            {
                "order_id": row.id,
                "line_no": line_no,
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line_no, line in enumerate(lines, start=1)
        ],
    )
    if request.id is not None:
        advance_id_sequence(conn, orders.name)
    return _order_record(conn, row)


def _read_order(conn: Connection, order_id: int) -> OrderRecord:
    rows = _SELECT_ORDER_WITH_ITEMS.rows(conn, {"b_order_id": order_id})
    if not rows:
        msg = f"order {order_id} does not exist"
        raise OrderNotFound(msg)
    return _order_record_of(rows[0], rows)


def _update_order_payment(conn: Connection, order_id: int, request: OrderPaymentUpdateRequest) -> OrderRecord:
    rows = _SELECT_ORDER_WITH_ITEMS_FOR_UPDATE.rows(conn, {"b_order_id": order_id})
    if not rows:
        msg = f"order {order_id} does not exist"
        raise OrderNotFound(msg)
    row = rows[0]
    current = order_payment_state(row)
    reaction = react_to_payment(current, payment_id=request.payment_id, status=request.payment_status)
    match reaction:
        case OrderConflict.ORDER_CANCELLED:
            msg = f"order {order_id} is cancelled; it cannot be paid"
            raise OrderCancelled(msg)
        case OrderConflict.PAID_BY_OTHER_PAYMENT:
            msg = f"order {order_id} is already paid by another payment"
            raise OrderAlreadyPaid(msg)
        case OrderPaymentState():
            if reaction != current:
                updated_at = write_order_payment_state(conn, order_id, reaction)
                return _order_record_of(row, rows, state=reaction, updated_at=updated_at)
    return _order_record_of(row, rows)


def _cancel_order(conn: Connection, order_id: int) -> OrderRecord:
    row = _locked_order_row(conn, order_id)
    if row.status == OrderStatus.PAID:
        msg = f"order {order_id} is paid; it cannot be cancelled"
        raise OrderAlreadyPaid(msg)
    if row.status == OrderStatus.PENDING:
        row = conn.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(status=OrderStatus.CANCELLED.value, updated_at=datetime.now(UTC))
            .returning(*orders.c)
        ).one()
    return _order_record(conn, row)


def order_payment_state(row: Any) -> OrderPaymentState:
    return OrderPaymentState(
        status=OrderStatus(row.status),
        payment_status=OrderPaymentStatus(row.payment_status),
        payment_id=row.payment_id,
    )


def write_order_payment_state(conn: Connection, order_id: int, state: OrderPaymentState) -> datetime:
    """Store the order's payment state; return the `updated_at` it was stored with."""
    updated_at = datetime.now(UTC)
    _UPDATE_PAYMENT_STATE.rows(
        conn,
        {
            "b_order_id": order_id,
            "status": state.status.value,
            "payment_status": state.payment_status.value,
            "payment_id": state.payment_id,
            "updated_at": updated_at,
        },
    )
    log.debug(
        "order.payment_state_changed",
        order_id=str(order_id),
        status=state.status.value,
        payment_status=state.payment_status.value,
        payment_id=state.payment_id,
    )
    return updated_at


def _locked_order_row(conn: Connection, order_id: int) -> Any:
    row = _SELECT_ORDER_FOR_UPDATE.first(conn, {"b_order_id": order_id})
    if row is None:
        msg = f"order {order_id} does not exist"
        raise OrderNotFound(msg)
    return row


def _order_record(conn: Connection, row: Any) -> OrderRecord:
    return _order_record_of(row, _SELECT_ITEMS.rows(conn, {"b_order_id": row.id}))


def _order_record_of(
    row: Any,
    items: Iterable[Any],
    *,
    state: OrderPaymentState | None = None,
    updated_at: datetime | None = None,
) -> OrderRecord:
    """The record of an order `row` with its `items` rows, with `state` applied when given."""
    return OrderRecord(
        id=str(row.id),
        customer_id=str(row.customer_id),
        status=row.status if state is None else state.status,
        payment_status=row.payment_status if state is None else state.payment_status,
        payment_id=row.payment_id if state is None else state.payment_id,
        currency=row.currency,
        items=[
            OrderItemRecord(
                product_id=str(item.product_id),
                quantity=item.quantity,
                unit_price=format_cents(item.unit_price_cents),
            )
            for item in items
            if item.product_id is not None
        ],
        shipping_amount=_money_or_none(row.shipping_cents),
        tax_amount=_money_or_none(row.tax_cents),
        created_at=row.created_at,
        updated_at=row.updated_at if updated_at is None else updated_at,
    )


def _cents_or_none(amount: Decimal | None) -> int | None:
    return None if amount is None else to_cents(amount)


def _money_or_none(cents: int | None) -> str | None:
    return None if cents is None else format_cents(cents)
