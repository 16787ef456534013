"""Pure rules: how an order reacts to a payment, the payment version guard, and line pricing.

Nothing here touches the database or HTTP; the store applies these decisions inside its transactions.

How an order follows its payments (`react_to_payment`):
- `approved` marks a pending order `paid` with that payment. A second approval from another payment
  for a paid order, or an approval for a cancelled order, is a conflict: the order is left alone.
- A paid order never goes back to a non-refund status. `partially_refunded`, `refunded` or `voided`
  from the payment that paid it update `payment_status` only: `status` stays `paid`, so the order is never re-opened for
  payment by itself (a refund may be partial, and re-opening could invite a second charge).
- A payment's own status only moves forward along its life cycle (processing, then unknown or
  held_for_review, then approved, declined or failed, then partially_refunded, then refunded or
  voided), so a late or
  retried update never regresses the order.
- Another payment's status replaces the order's current one only when that payment supersedes the
  current one (for `PUT /payments`: created no earlier; a `PATCH` always supersedes).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from reference_db_service.errors import UnknownProduct
from reference_db_service.statuses import OrderPaymentStatus, OrderStatus, PaymentStatus

_STAGE: Mapping[str, int] = {
    OrderPaymentStatus.UNPAID: -1,
    OrderPaymentStatus.PROCESSING: 0,
    OrderPaymentStatus.UNKNOWN: 1,
    OrderPaymentStatus.HELD_FOR_REVIEW: 1,
    OrderPaymentStatus.APPROVED: 2,
    OrderPaymentStatus.DECLINED: 2,
    OrderPaymentStatus.FAILED: 2,
    OrderPaymentStatus.PARTIALLY_REFUNDED: 3,
    OrderPaymentStatus.REFUNDED: 4,
    OrderPaymentStatus.VOIDED: 4,
}
_REFUNDS = frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED, PaymentStatus.VOIDED})


@dataclass(frozen=True, slots=True)
class OrderPaymentState:
    status: OrderStatus
    payment_status: OrderPaymentStatus
    payment_id: str | None


class OrderConflict(StrEnum):
    ORDER_CANCELLED = "order_cancelled"
    PAID_BY_OTHER_PAYMENT = "paid_by_other_payment"


def react_to_payment(
    order: OrderPaymentState,
    *,
    payment_id: str,
    status: PaymentStatus,
    supersedes_current: bool = True,
) -> OrderPaymentState | OrderConflict:
    """Return the order's next payment state (possibly `order` itself), or the conflict."""
    same_payment = order.payment_id == payment_id
    if same_payment and _STAGE[status] < _STAGE[order.payment_status]:
        return order
    if status is PaymentStatus.APPROVED:
        if order.status is OrderStatus.CANCELLED:
            return OrderConflict.ORDER_CANCELLED
        if order.status is OrderStatus.PAID and not same_payment:
            return OrderConflict.PAID_BY_OTHER_PAYMENT
        return OrderPaymentState(OrderStatus.PAID, OrderPaymentStatus.APPROVED, payment_id)
    if order.status is OrderStatus.PAID:
        if same_payment and status in _REFUNDS:
            return replace(order, payment_status=OrderPaymentStatus(status.value))
        return order
    if not same_payment and order.payment_id is not None and not supersedes_current:
        return order
    return OrderPaymentState(order.status, OrderPaymentStatus(status.value), payment_id)


class PaymentWrite(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    IGNORE = "ignore"  # stale or equal version: the stored record stands


def decide_payment_write(*, stored_version: int | None, incoming_version: int) -> PaymentWrite:
    if stored_version is None:
        return PaymentWrite.CREATE
    if incoming_version > stored_version:
        return PaymentWrite.UPDATE
    return PaymentWrite.IGNORE


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: int
    quantity: int
    unit_price_cents: int


def price_lines(items: Sequence[tuple[int, int]], prices_cents: Mapping[int, int]) -> list[OrderLine]:
    """Copy each product's current price onto the order's lines, in the given order.

    Raises:
        UnknownProduct: naming every product id that has no price.
    """
    missing = sorted({product_id for product_id, _ in items if product_id not in prices_cents})
    if missing:
        names = ", ".join(str(product_id) for product_id in missing)
        msg = f"unknown product id(s): {names}"
        raise UnknownProduct(msg)
    return [OrderLine(product_id, quantity, prices_cents[product_id]) for product_id, quantity in items]


def order_total_cents(lines: Sequence[OrderLine], *, shipping_cents: int | None, tax_cents: int | None) -> int:
    subtotal = sum(line.quantity * line.unit_price_cents for line in lines)
    return subtotal + (shipping_cents or 0) + (tax_cents or 0)
