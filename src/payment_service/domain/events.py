"""Event payloads published through the outbox: what other services read from Kafka.

Payloads are frozen Pydantic models, since they cross a process boundary; `docs/asyncapi.yaml` is
generated from their JSON Schemas. The envelope (CloudEvents binary mode) is `messaging/`'s job:
here an event is its type, subject, key and data.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from payment_service.domain.payments import PaymentStatus
from payment_service.domain.refunds import RefundKind

EVENT_SOURCE = "/payment-service"


class EventStream(StrEnum):
    """Which topic an event goes to; topic names themselves come from settings."""

    PAYMENTS = "payments"
    NOTIFICATIONS = "notifications"


class EventModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class GatewayDetails(EventModel):
    name: str = "authorize.net"
    transaction_id: str | None = None
    auth_code: str | None = None
    response_code: str | None = None
    reason_code: str | None = None
    message: str | None = None
    avs_result: str | None = None
    cvv_result: str | None = None
    account_number: str | None = None
    account_type: str | None = None


class PaymentRecorded(EventModel):
    """Data of `payment.*` events: the payment resource without card data, plus its version."""

    id: str
    order_id: str
    customer_id: str
    status: PaymentStatus
    amount: str  # decimal string, two places for USD
    currency: str
    gateway: GatewayDetails | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    # What was given back so far (voided: all of it); set once a refund or void succeeded, else null.
    refunded_amount: str | None = None


class OrderLine(EventModel):
    product_id: str
    name: str
    quantity: int
    unit_price: str


class OrderSummary(EventModel):
    id: str
    items: list[OrderLine]
    shipping_amount: str | None = None
    tax_amount: str | None = None
    total: str
    currency: str


class CustomerAddress(EventModel):
    line1: str
    line2: str | None = None
    city: str
    state: str
    zip: str
    country: str


class CustomerSummary(EventModel):
    id: str
    email: str
    first_name: str
    last_name: str
    address: CustomerAddress


class PaymentSummary(EventModel):
    id: str
    transaction_id: str | None
    amount: str
    currency: str
    account_number: str | None  # masked: XXXX1111
    account_type: str | None


class OrderPaid(EventModel):
    """Data of `order.paid`: what a notification or inventory service needs."""

    order: OrderSummary
    customer: CustomerSummary
    payment: PaymentSummary


class RefundSummary(EventModel):
    id: str
    kind: RefundKind
    amount: str  # this refund's
    currency: str
    total_refunded: str  # every succeeded refund of the payment, this one included
    fully_refunded: bool  # nothing of the payment is left: the order's money is all given back
    reason: str | None = None
    transaction_id: str | None = None


class OrderRefunded(EventModel):
    """Data of `order.refunded`: money given back for an order (a refund or a void)."""

    order: OrderSummary
    customer: CustomerSummary
    payment: PaymentSummary
    refund: RefundSummary
    # The order's items when it is fully refunded (a return of everything); empty for a partial refund,
    # whose items the payment service does not know.
    items: list[OrderLine]


def payment_event_type(status: PaymentStatus) -> str:
    # Every refund, partial or not, is a `payment.refunded`; the data's status and refunded_amount tell which.
    if status is PaymentStatus.PARTIALLY_REFUNDED:
        return "payment.refunded"
    return f"payment.{status.value}"


@dataclass(frozen=True, slots=True)
class OutboundEvent:
    """One event ready for the outbox: the relay wraps it in a CloudEvents envelope."""

    event_id: str  # uuid; ce_id, the consumers' dedupe key
    stream: EventStream
    event_type: str  # ce_type, e.g. payment.approved, order.paid
    subject: str  # ce_subject, e.g. payments/pay_…
    key: str  # the order id: per-order ordering on the topic
    data: bytes  # JSON of the payload model
    occurred_at: datetime
    # W3C trace context of the request that wrote it (only with tracing on): its record continues that trace.
    traceparent: str | None = None
