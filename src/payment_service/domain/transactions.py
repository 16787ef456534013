"""Transactions as the gateway records them, for reconciliation and refunds.

These are read back from Authorize.Net's reporting API (`getTransactionDetails`,
`getUnsettledTransactionList`, `getSettledBatchList`, `getTransactionList`); the wire names and the mapping of the gateway's 24
`transactionStatus` values live in `gateway/statuses.py`. Nothing here holds card data beyond the
masked account number (`XXXX1111`).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import assert_never

from payment_service.domain.payments import PaymentStatus


class GatewayTransactionStatus(StrEnum):
    """What a gateway-side transaction status means to us (several gateway values fold into one)."""

    AUTHORIZED = "authorized"  # funds held, not captured yet
    CAPTURED = "captured"  # captured, waiting for (or inside) the nightly settlement
    SETTLED = "settled"
    HELD_FOR_REVIEW = "held_for_review"  # fraud filters hold it; a person decides
    DECLINED = "declined"
    FAILED = "failed"  # error at the gateway or processor: no money moved
    VOIDED = "voided"
    EXPIRED = "expired"  # an authorisation nobody captured within 30 days
    REFUND_PENDING = "refund_pending"  # this transaction is a refund, not settled yet
    REFUNDED = "refunded"  # this transaction is a refund, settled
    CHARGED_BACK = "charged_back"  # chargeback or returned item: the money went back
    UNRECOGNIZED = "unrecognized"  # a value newer than our schema copy: a person looks

    @property
    def payment_status(self) -> PaymentStatus:
        """The status of our payment that this transaction status implies."""
        match self:
            case (
                GatewayTransactionStatus.AUTHORIZED
                | GatewayTransactionStatus.CAPTURED
                | GatewayTransactionStatus.SETTLED
            ):
                return PaymentStatus.APPROVED
            case GatewayTransactionStatus.HELD_FOR_REVIEW:
                return PaymentStatus.HELD_FOR_REVIEW
            case GatewayTransactionStatus.DECLINED:
                return PaymentStatus.DECLINED
            case GatewayTransactionStatus.FAILED:
                return PaymentStatus.FAILED
            case GatewayTransactionStatus.VOIDED | GatewayTransactionStatus.EXPIRED:
                # Nothing was captured: the hold was released.
                return PaymentStatus.VOIDED
            case (
                GatewayTransactionStatus.REFUND_PENDING
                | GatewayTransactionStatus.REFUNDED
                | GatewayTransactionStatus.CHARGED_BACK
            ):
                return PaymentStatus.REFUNDED
            case GatewayTransactionStatus.UNRECOGNIZED:
                return PaymentStatus.UNKNOWN
            case _ as unreachable:
                assert_never(unreachable)

    @property
    def can_void(self) -> bool:
        """Unsettled transactions are voided, never refunded (the gateway answers reason 54)."""
        return self in _VOIDABLE

    @property
    def can_refund(self) -> bool:
        return self is GatewayTransactionStatus.SETTLED


_VOIDABLE = frozenset(
    {GatewayTransactionStatus.AUTHORIZED, GatewayTransactionStatus.CAPTURED, GatewayTransactionStatus.HELD_FOR_REVIEW}
)


class TransactionKind(StrEnum):
    CHARGE = "charge"  # authorise and capture
    AUTHORIZATION = "authorization"
    CAPTURE = "capture"  # of an earlier authorisation
    REFUND = "refund"
    VOID = "void"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class TransactionDetails:
    """One transaction as `getTransactionDetails` reports it."""

    transaction_id: str
    kind: TransactionKind
    status: GatewayTransactionStatus
    gateway_status: str  # the gateway's own value, e.g. "capturedPendingSettlement"
    submitted_at: datetime  # aware UTC
    response_code: str
    reason_code: str
    reason_description: str
    auth_amount: Decimal
    settle_amount: Decimal
    ref_id: str | None = None  # the refId sent with the transaction (`transrefId`)
    ref_transaction_id: str | None = None  # the transaction a capture, refund or void refers to
    requested_amount: Decimal | None = None
    invoice_number: str | None = None
    auth_code: str | None = None
    avs_result: str | None = None
    cvv_result: str | None = None
    account_number: str | None = None  # masked: XXXX1111
    account_type: str | None = None
    batch_id: str | None = None
    settled_at: datetime | None = None
    customer_id: str | None = None  # `customer.id` as sent
    description: str | None = None  # `order.description` as sent

    @property
    def card_last4(self) -> str | None:
        return self.account_number[-4:] if self.account_number else None

    @property
    def amounts(self) -> frozenset[Decimal]:
        """The amounts the details state: `requestedAmount` when sent, and auth and settle amounts above zero.

        Which of them the live gateway fills depends on the transaction's state (a held one may lack
        `requestedAmount`, a declined one has no auth amount), so a match takes any of them.
        """
        found = {amount for amount in (self.auth_amount, self.settle_amount) if amount > 0}
        if self.requested_amount is not None:
            found.add(self.requested_amount)
        return frozenset(found)


@dataclass(frozen=True, slots=True)
class UnsettledTransaction:
    """One summary row of `getUnsettledTransactionList`."""

    transaction_id: str
    status: GatewayTransactionStatus
    gateway_status: str
    submitted_at: datetime  # aware UTC
    settle_amount: Decimal
    account_number: str  # masked: XXXX1111
    account_type: str
    invoice_number: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @property
    def card_last4(self) -> str:
        return self.account_number[-4:]


@dataclass(frozen=True, slots=True)
class UnsettledTransactionsPage:
    transactions: tuple[UnsettledTransaction, ...]
    total_count: int | None  # in the whole result set, across pages; optional in the XSD


# One row of either transaction list: `getUnsettledTransactionList` and `getTransactionList` (a settled
# batch) both answer with the XSD's `transactionSummaryType`.
TransactionSummary = UnsettledTransaction


@dataclass(frozen=True, slots=True)
class SettledBatch:
    """One settlement batch as `getSettledBatchList` reports it."""

    batch_id: str
    settled_at: datetime | None  # aware UTC; the schema makes it optional
    settlement_state: str  # the gateway's value: "settledSuccessfully", "settlementError", …
    payment_method: str | None = None  # "creditCard" or "eCheck"


@dataclass(frozen=True, slots=True)
class BatchTransactionsPage:
    """One page of the transactions of a settled batch (`getTransactionList`)."""

    batch_id: str
    transactions: tuple[TransactionSummary, ...]
    total_count: int | None  # in the whole batch, across pages; optional in the XSD
