"""Authorize.Net's `transactionStatus` values (XSD `transactionStatusEnum`) and what each means to us.

The table lists all 24 values of the official schema literally; a unit test fails when the schema
gains one that is not here. A value missing from the table (a server newer than our schema copy)
reads as `UNRECOGNIZED`, which leaves the payment for a person rather than guessing.
"""

from payment_service.domain.transactions import GatewayTransactionStatus, TransactionKind

_S = GatewayTransactionStatus

TRANSACTION_STATUSES: dict[str, GatewayTransactionStatus] = {
    "authorizedPendingCapture": _S.AUTHORIZED,
    # Authorised, then held until the merchant releases it: not ours to call approved yet.
    "authorizedPendingRelease": _S.HELD_FOR_REVIEW,
    "capturedPendingSettlement": _S.CAPTURED,
    "pendingSettlement": _S.CAPTURED,
    "pendingFinalSettlement": _S.CAPTURED,
    "updatingSettlement": _S.CAPTURED,
    # Approved after a fraud review: it then settles like any capture.
    "approvedReview": _S.CAPTURED,
    # A void was attempted and failed, so the original charge still stands.
    "couldNotVoid": _S.CAPTURED,
    "settledSuccessfully": _S.SETTLED,
    "chargebackReversal": _S.SETTLED,
    "FDSPendingReview": _S.HELD_FOR_REVIEW,
    "FDSAuthorizedPendingReview": _S.HELD_FOR_REVIEW,
    "underReview": _S.HELD_FOR_REVIEW,
    "declined": _S.DECLINED,
    "failedReview": _S.DECLINED,
    "communicationError": _S.FAILED,
    "generalError": _S.FAILED,
    # The batch failed to settle: no money moved for this transaction.
    "settlementError": _S.FAILED,
    "voided": _S.VOIDED,
    "expired": _S.EXPIRED,
    "refundPendingSettlement": _S.REFUND_PENDING,
    "refundSettledSuccessfully": _S.REFUNDED,
    "returnedItem": _S.CHARGED_BACK,
    "chargeback": _S.CHARGED_BACK,
}

TRANSACTION_KINDS: dict[str, TransactionKind] = {
    "authCaptureTransaction": TransactionKind.CHARGE,
    "authOnlyTransaction": TransactionKind.AUTHORIZATION,
    "priorAuthCaptureTransaction": TransactionKind.CAPTURE,
    "captureOnlyTransaction": TransactionKind.CAPTURE,
    "refundTransaction": TransactionKind.REFUND,
    "voidTransaction": TransactionKind.VOID,
}


def get_transaction_status(gateway_status: str) -> GatewayTransactionStatus:
    return TRANSACTION_STATUSES.get(gateway_status, GatewayTransactionStatus.UNRECOGNIZED)


def get_transaction_kind(transaction_type: str) -> TransactionKind:
    return TRANSACTION_KINDS.get(transaction_type, TransactionKind.OTHER)
