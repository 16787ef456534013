"""The outbox rows a payment's change produces: its `payment.*` event, `order.paid` on approval, `order.refunded`.

Shared by the pay flow and the reconciler, so that a payment settled later reads exactly like one
settled at once. What is here is pure: the caller fetches the order, customer and products.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from uuid import uuid4

from payment_service import tracing
from payment_service.domain.events import (
    CustomerAddress,
    CustomerSummary,
    EventStream,
    GatewayDetails,
    OrderLine,
    OrderPaid,
    OrderRefunded,
    OrderSummary,
    OutboundEvent,
    PaymentRecorded,
    PaymentSummary,
    RefundSummary,
    payment_event_type,
)
from payment_service.domain.money import Money
from payment_service.domain.orders import Customer, Order, Product
from payment_service.domain.payments import TERMINAL_STATUSES, GatewayResult, Payment, PaymentStatus
from payment_service.domain.refunds import Refund

# Statuses that are published (payment.* events): every terminal one, and held_for_review.
PUBLISHED_STATUSES: Final = TERMINAL_STATUSES | {PaymentStatus.HELD_FOR_REVIEW}
REFUND_STATUSES: Final = frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED, PaymentStatus.VOIDED})


@dataclass(frozen=True, slots=True)
class OrderContext:
    """The order a payment pays for, with what `order.paid` tells about it."""

    order: Order
    customer: Customer
    products: Mapping[str, Product]


def product_name(products: Mapping[str, Product], product_id: str) -> str:
    product = products.get(product_id)
    return product.name if product is not None else f"Product {product_id}"


def payment_events(payment: Payment, context: OrderContext | None) -> list[OutboundEvent]:
    """The outbox rows for `payment` as it now stands; none for statuses that are not published.

    Raises:
        ValueError: `payment` is approved but no `context` was given (`order.paid` needs it).
    """
    if payment.status not in PUBLISHED_STATUSES:
        return []
    occurred_at = payment.updated_at
    traceparent = tracing.current_traceparent()
    events = [
        OutboundEvent(
            event_id=str(uuid4()),
            stream=EventStream.PAYMENTS,
            event_type=payment_event_type(payment.status),
            subject=f"payments/{payment.payment_id}",
            key=payment.order_id,
            data=payment_record(payment).model_dump_json().encode(),
            occurred_at=occurred_at,
            traceparent=traceparent,
        )
    ]
    if payment.status is PaymentStatus.APPROVED:
        if context is None:
            raise ValueError("an approved payment needs its order to build order.paid")
        events.append(
            OutboundEvent(
                event_id=str(uuid4()),
                stream=EventStream.NOTIFICATIONS,
                event_type="order.paid",
                subject=f"orders/{payment.order_id}",
                key=payment.order_id,
                data=order_paid(context, payment).model_dump_json().encode(),
                occurred_at=occurred_at,
            )
        )
    return events


def payment_record(payment: Payment) -> PaymentRecorded:
    """The payment resource without card data, with its version: the data of `payment.*` events."""
    result = payment.gateway
    return PaymentRecorded(
        id=payment.payment_id,
        order_id=payment.order_id,
        customer_id=payment.customer_id,
        status=payment.status,
        amount=str(payment.amount.amount),
        currency=payment.amount.currency,
        gateway=GatewayDetails.model_validate(result.as_dict()) if result is not None else None,
        created_at=payment.created_at,
        updated_at=payment.updated_at,
        version=payment.version,
        refunded_amount=str(payment.refunded_amount) if payment.status in REFUND_STATUSES else None,
    )


def _money_text(amount: Decimal | None, currency: str) -> str | None:
    return None if amount is None else str(Money(amount, currency).amount)


def order_paid(context: OrderContext, payment: Payment) -> OrderPaid:
    return OrderPaid(
        order=_order_summary(context, payment), customer=_customer_summary(context), payment=_payment_summary(payment)
    )


def refund_events(payment: Payment, refund: Refund, context: OrderContext) -> list[OutboundEvent]:
    """The outbox rows of a succeeded refund or void: the payment's `payment.*` event and `order.refunded`."""
    events = payment_events(payment, context)
    data = order_refunded(context, payment, refund)
    events.append(
        OutboundEvent(
            event_id=str(uuid4()),
            stream=EventStream.NOTIFICATIONS,
            event_type="order.refunded",
            subject=f"orders/{payment.order_id}",
            key=payment.order_id,
            data=data.model_dump_json().encode(),
            occurred_at=payment.updated_at,
            traceparent=tracing.current_traceparent(),
        )
    )
    return events


def order_refunded(context: OrderContext, payment: Payment, refund: Refund) -> OrderRefunded:
    order = _order_summary(context, payment)
    fully = payment.status in (PaymentStatus.REFUNDED, PaymentStatus.VOIDED)
    return OrderRefunded(
        order=order,
        customer=_customer_summary(context),
        payment=_payment_summary(payment),
        refund=RefundSummary(
            id=refund.refund_id,
            kind=refund.kind,
            amount=str(refund.amount.amount),
            currency=refund.amount.currency,
            total_refunded=str(payment.refunded_amount),
            fully_refunded=fully,
            reason=refund.reason,
            transaction_id=refund.gateway.transaction_id if refund.gateway is not None else None,
        ),
        items=list(order.items) if fully else [],
    )


def _order_summary(context: OrderContext, payment: Payment) -> OrderSummary:
    order = context.order
    currency = order.currency
    return OrderSummary(
        id=order.order_id,
        items=[
            OrderLine(
                product_id=item.product_id,
                name=product_name(context.products, item.product_id),
                quantity=item.quantity,
                unit_price=str(item.unit_price),
            )
            for item in order.items
        ],
        shipping_amount=_money_text(order.shipping_amount, currency),
        tax_amount=_money_text(order.tax_amount, currency),
        total=str(payment.amount.amount),
        currency=currency,
    )


def _customer_summary(context: OrderContext) -> CustomerSummary:
    customer = context.customer
    address = customer.address
    return CustomerSummary(
        id=customer.customer_id,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        address=CustomerAddress(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            state=address.state,
            zip=address.zip,
            country=address.country,
        ),
    )


def _payment_summary(payment: Payment) -> PaymentSummary:
    result = payment.gateway or GatewayResult()
    masked = result.account_number or (f"XXXX{payment.card_last4}" if payment.card_last4 else None)
    return PaymentSummary(
        id=payment.payment_id,
        transaction_id=result.transaction_id,
        amount=str(payment.amount.amount),
        currency=payment.amount.currency,
        account_number=masked,
        account_type=result.account_type or payment.card_brand,
    )
