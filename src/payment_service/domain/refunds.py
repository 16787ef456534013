"""Refunds and voids of a payment, and the pure rules that keep them below what was captured.

A void cancels an unsettled transaction whole; a refund gives back some or all of a settled one. Both
are `Refund`s of a payment (`kind`). A refund counts against the captured amount from the moment it is
written, before the gateway is called: `processing`, `unknown` and `succeeded` refunds are all taken,
only a `failed` one gives its amount back. The store serialises refunds per payment, so the sum of what
is taken never exceeds what was captured, whatever runs concurrently.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final

from payment_service.domain.errors import (
    NothingLeftToRefund,
    PartialVoidNotAllowed,
    PaymentNotRefundable,
    RefundNotAllowed,
)
from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus


class RefundKind(StrEnum):
    VOID = "void"  # the unsettled transaction is cancelled whole
    REFUND = "refund"  # money sent back against a settled transaction


class RefundStatus(StrEnum):
    PROCESSING = "processing"  # written, gateway call under way
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the gateway refused, or nothing was sent: no money moved
    UNKNOWN = "unknown"  # sent, no answer read: the reconciler settles it, never re-sends


class RefundOrigin(StrEnum):
    API = "api"  # POST /payments/{id}/refunds
    AUTOMATIC = "automatic"  # the order could no longer take an approved charge
    GATEWAY = "gateway"  # made outside the service (merchant interface), learnt from the gateway


# Refunds whose amount is taken from the captured amount.
TAKEN_STATUSES: Final = frozenset({RefundStatus.PROCESSING, RefundStatus.UNKNOWN, RefundStatus.SUCCEEDED})
# Payments that hold captured money that may still be given back.
REFUNDABLE_STATUSES: Final = frozenset({PaymentStatus.APPROVED, PaymentStatus.PARTIALLY_REFUNDED})


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    payment_id: str
    kind: RefundKind
    amount: Money
    status: RefundStatus
    origin: RefundOrigin
    ref_id: str  # sent as refId, and as invoiceNumber of a refund: how the reconciler finds it
    created_at: datetime
    updated_at: datetime
    reason: str | None = None
    gateway: GatewayResult | None = None
    version: int = 1

    @property
    def is_settled(self) -> bool:
        return self.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED)


def taken_amount(refunds: Iterable[Refund]) -> Decimal:
    """What the payment's refunds take from its captured amount (see the module docstring)."""
    return sum((r.amount.amount for r in refunds if r.status in TAKEN_STATUSES), Decimal(0))


def check_refund(payment: Payment, refunds: Iterable[Refund], *, kind: RefundKind, amount: Decimal) -> None:
    """Refuse a refund of `amount` that the payment cannot give.

    Raises:
        PaymentNotRefundable: nothing captured. NothingLeftToRefund: all of it refunded, or being refunded.
            RefundNotAllowed: a non-positive amount, more decimals than the currency has, more than what
            is left. PartialVoidNotAllowed: a void of less than the whole amount (voids are whole; a
            partial refund waits for settlement).
    """
    refunds = list(refunds)
    if payment.status is PaymentStatus.REFUNDED:
        raise NothingLeftToRefund(f"payment {payment.payment_id} is refunded: nothing is left to refund")
    if payment.status not in REFUNDABLE_STATUSES or payment.captured_amount <= 0:
        raise PaymentNotRefundable(f"payment {payment.payment_id} is {payment.status.value}: nothing to refund")
    left = payment.captured_amount - taken_amount(refunds)
    if left <= 0:
        raise NothingLeftToRefund("nothing is left to refund (refunds in progress included)")
    if amount <= 0:
        raise RefundNotAllowed("the refund amount must be positive")
    if amount != Money(amount, payment.amount.currency).amount:
        raise RefundNotAllowed(f"the refund amount has more decimals than {payment.amount.currency} allows")
    if amount > left:
        raise RefundNotAllowed(
            f"the refund amount {amount} exceeds what is left to refund ({left}, refunds in progress included)"
        )
    if kind is RefundKind.VOID and (amount != payment.captured_amount or taken_amount(refunds) > 0):
        raise PartialVoidNotAllowed(
            "the payment is not settled yet, so it can only be voided whole; refund the whole amount now,"
            " or refund part of it once the gateway has settled the transaction (usually within a day)"
        )


def payment_after_refunds(payment: Payment, refunds: Iterable[Refund], *, now: datetime) -> Payment:
    """`payment` as its succeeded refunds leave it; the same payment when nothing changed.

    A succeeded void makes it `voided` (all of it given back); succeeded refunds make it
    `partially_refunded` or, once they reach the captured amount, `refunded`.
    """
    succeeded = [r for r in refunds if r.status is RefundStatus.SUCCEEDED]
    if not succeeded or payment.captured_amount <= 0:
        return payment
    refunded = sum((r.amount.amount for r in succeeded), Decimal(0))
    if any(r.kind is RefundKind.VOID for r in succeeded):
        status, refunded = PaymentStatus.VOIDED, payment.captured_amount
    elif refunded >= payment.captured_amount:
        status = PaymentStatus.REFUNDED
    else:
        status = PaymentStatus.PARTIALLY_REFUNDED
    if status is payment.status and refunded == payment.refunded_amount:
        return payment
    return replace(payment, status=status, refunded_amount=refunded, version=payment.version + 1, updated_at=now)
