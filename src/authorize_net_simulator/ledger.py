"""The in-memory ledger: every stored transaction with its status lifecycle, and settlement batches.

Lifecycle (NOTES §9): auth-only → authorizedPendingCapture → (capture) → capturedPendingSettlement →
(settle) → settledSuccessfully; voids end in voided; refunds go refundPendingSettlement →
refundSettledSuccessfully; fraud holds sit in FDSPendingReview / FDSAuthorizedPendingReview until
approved or declined. Only the last four digits of a card are kept.
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

AUTH_LIFETIME: Final = timedelta(days=30)


class TransactionStatus(enum.StrEnum):
    AUTHORIZED_PENDING_CAPTURE = "authorizedPendingCapture"
    CAPTURED_PENDING_SETTLEMENT = "capturedPendingSettlement"
    REFUND_PENDING_SETTLEMENT = "refundPendingSettlement"
    SETTLED_SUCCESSFULLY = "settledSuccessfully"
    REFUND_SETTLED_SUCCESSFULLY = "refundSettledSuccessfully"
    VOIDED = "voided"
    DECLINED = "declined"
    EXPIRED = "expired"
    FDS_PENDING_REVIEW = "FDSPendingReview"
    FDS_AUTHORIZED_PENDING_REVIEW = "FDSAuthorizedPendingReview"


UNSETTLED_STATUSES: Final = frozenset(
    {
        TransactionStatus.AUTHORIZED_PENDING_CAPTURE,
        TransactionStatus.CAPTURED_PENDING_SETTLEMENT,
        TransactionStatus.REFUND_PENDING_SETTLEMENT,
        TransactionStatus.FDS_PENDING_REVIEW,
        TransactionStatus.FDS_AUTHORIZED_PENDING_REVIEW,
    }
)
HELD_STATUSES: Final = frozenset(
    {TransactionStatus.FDS_PENDING_REVIEW, TransactionStatus.FDS_AUTHORIZED_PENDING_REVIEW}
)
_SETTLES_TO: Final = {
    TransactionStatus.CAPTURED_PENDING_SETTLEMENT: TransactionStatus.SETTLED_SUCCESSFULLY,
    TransactionStatus.REFUND_PENDING_SETTLEMENT: TransactionStatus.REFUND_SETTLED_SUCCESSFULLY,
}


@dataclass(slots=True)
class Transaction:
    """One stored transaction. Mutable: its status moves along the lifecycle."""

    trans_id: str
    transaction_type: str
    status: TransactionStatus
    response_code: str
    reason_code: int
    submitted_at: datetime
    requested_amount: Decimal
    auth_amount: Decimal
    settle_amount: Decimal
    last_four: str
    account_type: str
    auth_code: str = ""
    avs_result: str = ""
    cvv_result: str = ""
    ref_id: str | None = None
    ref_trans_id: str | None = None
    invoice_number: str | None = None
    description: str | None = None
    po_number: str | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    customer_ip: str | None = None
    bill_to: dict[str, str] = field(default_factory=dict)
    ship_to: dict[str, str] = field(default_factory=dict)
    line_items: list[dict[str, str]] = field(default_factory=list)
    refunded_amount: Decimal = Decimal("0")
    network_trans_id: str = ""
    fds_filter: str | None = None
    batch_id: str | None = None
    settled_at: datetime | None = None

    @property
    def is_settled(self) -> bool:
        return self.batch_id is not None


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    settled_at: datetime
    trans_ids: tuple[str, ...]


class Ledger:
    def __init__(self, *, first_trans_id: int) -> None:
        self._next_trans_id = first_trans_id
        self._next_batch_id = 1000001
        self._transactions: dict[str, Transaction] = {}
        self._batches: list[Batch] = []

    def new_trans_id(self) -> str:
        trans_id = str(self._next_trans_id)
        self._next_trans_id += 1
        return trans_id

    def add(self, transaction: Transaction) -> None:
        self._transactions[transaction.trans_id] = transaction

    def get(self, trans_id: str) -> Transaction | None:
        return self._transactions.get(trans_id)

    def all(self) -> Iterable[Transaction]:
        return self._transactions.values()

    def batches(self) -> list[Batch]:
        return list(self._batches)

    def expire_authorizations(self, now: datetime) -> None:
        for transaction in self._transactions.values():
            if (
                transaction.status is TransactionStatus.AUTHORIZED_PENDING_CAPTURE
                and now - transaction.submitted_at > AUTH_LIFETIME
            ):
                transaction.status = TransactionStatus.EXPIRED

    def settle(self, now: datetime) -> Batch | None:
        """Close the batch: captures and refunds settle; declined and voided ones leave the unsettled list.

        Returns the new batch, or None when nothing was waiting.
        """
        self.expire_authorizations(now)
        batch_id = str(self._next_batch_id)
        members: list[str] = []
        for transaction in self._transactions.values():
            if transaction.is_settled:
                continue
            target = _SETTLES_TO.get(transaction.status)
            if target is None and transaction.status not in (TransactionStatus.DECLINED, TransactionStatus.VOIDED):
                continue
            if target is not None:
                transaction.status = target
            transaction.batch_id = batch_id
            transaction.settled_at = now
            members.append(transaction.trans_id)
        if not members:
            return None
        self._next_batch_id += 1
        batch = Batch(batch_id, now, tuple(members))
        self._batches.append(batch)
        return batch

    def unsettled(self) -> list[Transaction]:
        """Transactions not yet in a batch (held, pending, and declined or voided ones of the current day)."""
        return [
            t for t in self._transactions.values() if not t.is_settled and t.status is not TransactionStatus.EXPIRED
        ]
