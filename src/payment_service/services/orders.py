"""What the use cases read from and tell the db-service about an order.

`fetch_order_context` gathers what `order.paid` says about an order (customer and products fetched
concurrently). `update_order_payment_status` is best effort by design: the payment stands whatever
the db-service answers, and the payment consumer sets the order's status again from the published
event, so a failure there is logged and counted. Its `OrderUpdate` answer tells apart an order that
refused an approved charge (cancelled meanwhile, or paid by another attempt).
"""

import asyncio
from collections.abc import Awaitable
from enum import StrEnum
from typing import Final, TypeVar

import structlog

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.errors import DbServiceError, DbServiceUnavailable, OrderNotFound, OrderRefusedPayment
from payment_service.domain.orders import Order
from payment_service.domain.payments import Payment
from payment_service.services import metrics
from payment_service.services.payment_events import OrderContext

log = structlog.get_logger(__name__)

T = TypeVar("T")
U = TypeVar("U")


async def fetch_order_context(db_service: DbServiceClient, order: Order) -> OrderContext:
    """The order with its customer and products, the two fetched concurrently."""
    customer, products = await _both(
        db_service.fetch_customer(order.customer_id),
        db_service.fetch_products(item.product_id for item in order.items),
    )
    return OrderContext(order, customer, products)


async def _both(first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    # gather() without return_exceptions leaves the other call running unobserved when one fails.
    one, two = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(one, BaseException):
        raise one
    if isinstance(two, BaseException):
        raise two
    return one, two


class OrderUpdate(StrEnum):
    """What telling the db-service about a payment gave."""

    UPDATED = "updated"
    FAILED = "failed"  # refused or unreachable: the payment consumer sets it again from the event
    NOT_CURRENT = "not_current"  # a newer attempt owns the order: left as it is
    # The order cannot take this approved charge: the money was taken for an order that will not be paid by
    # it. The hook for voiding or refunding it (see `OrderRefusedPayment`).
    ORDER_CANCELLED = "order_cancelled"
    ORDER_ALREADY_PAID = "order_already_paid"


# The answers that mean an approved charge must be given back (`services/refunds.py`).
ORDER_REFUSALS: Final = frozenset({OrderUpdate.ORDER_CANCELLED, OrderUpdate.ORDER_ALREADY_PAID})


async def update_order_payment_status(db_service: DbServiceClient, payment: Payment) -> OrderUpdate:
    """PATCH the order with the payment's status; anything but UPDATED is logged and counted."""
    try:
        await db_service.update_order_payment(
            payment.order_id, status=payment.status.value, payment_id=payment.payment_id
        )
    except OrderRefusedPayment as exc:
        metrics.ORDER_REFUSED_PAYMENTS.labels(reason=exc.reason).inc()
        log.error(
            "order.refused_payment",
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            status=payment.status.value,
            reason=exc.reason,
        )
        return OrderUpdate(exc.reason)
    except (DbServiceUnavailable, DbServiceError, OrderNotFound) as exc:
        metrics.ORDER_UPDATE_FAILURES.inc()
        log.warning(
            "order.payment_status_update_failed",
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            error=exc.code,
        )
        return OrderUpdate.FAILED
    return OrderUpdate.UPDATED
