"""Order and payment statuses, as they appear on the wire and in the database."""

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "pending"  # awaiting payment
    PAID = "paid"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    """The payment service's statuses (DESIGN §3)."""

    PROCESSING = "processing"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"
    HELD_FOR_REVIEW = "held_for_review"
    UNKNOWN = "unknown"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


class OrderPaymentStatus(StrEnum):
    """An order's view of its payment: `unpaid`, or the status of its latest payment."""

    UNPAID = "unpaid"
    PROCESSING = "processing"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"
    HELD_FOR_REVIEW = "held_for_review"
    UNKNOWN = "unknown"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
