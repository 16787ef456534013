"""Telling the db-service which payment an order has, after the payment itself is safely recorded.

Best effort by design: the payment stands whatever the db-service answers, and the payment consumer
sets the order's status again from the published event, so a failure here is logged and counted.
"""

import structlog

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.errors import DbServiceError, DbServiceUnavailable, OrderNotFound
from payment_service.domain.payments import Payment
from payment_service.services import metrics

log = structlog.get_logger(__name__)


async def update_order_payment_status(db_service: DbServiceClient, payment: Payment) -> bool:
    """PATCH the order with the payment's status; False (logged, counted) when the db-service refused or is down."""
    try:
        await db_service.update_order_payment(
            payment.order_id, status=payment.status.value, payment_id=payment.payment_id
        )
    except (DbServiceUnavailable, DbServiceError, OrderNotFound) as exc:
        metrics.ORDER_UPDATE_FAILURES.inc()
        log.warning(
            "order.payment_status_update_failed",
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            error=exc.code,
        )
        return False
    return True
