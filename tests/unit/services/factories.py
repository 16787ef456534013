"""Typed factories of payments and gateway transaction details for the services' unit tests."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.domain.transactions import GatewayTransactionStatus, TransactionDetails, TransactionKind

SENT_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = SENT_AT + timedelta(minutes=5)


def make_payment(**changes: Any) -> Payment:
    payment = Payment(
        payment_id="pay_01ABCDEFGHJKMNPQ",
        order_id="1001",
        customer_id="42",
        status=PaymentStatus.UNKNOWN,
        amount=Money(Decimal("59.97"), "USD"),
        invoice_number="1001",
        ref_id="01ABCDEFGHJKMNPQ",
        card_last4="1111",
        card_brand="Visa",
        created_at=SENT_AT,
        updated_at=SENT_AT,
        version=2,
        gateway=GatewayResult(message="No answer was read from the gateway."),
        sent_at=SENT_AT,
    )
    return replace(payment, **changes)


def make_details(**changes: Any) -> TransactionDetails:
    details = TransactionDetails(
        transaction_id="60123456789",
        kind=TransactionKind.CHARGE,
        status=GatewayTransactionStatus.CAPTURED,
        gateway_status="capturedPendingSettlement",
        submitted_at=SENT_AT,
        response_code="1",
        reason_code="1",
        reason_description="This transaction has been approved.",
        auth_amount=Decimal("59.97"),
        settle_amount=Decimal("59.97"),
        ref_id="01ABCDEFGHJKMNPQ",
        requested_amount=Decimal("59.97"),
        invoice_number="1001",
        auth_code="QW7T2K",
        avs_result="Y",
        cvv_result="M",
        account_number="XXXX1111",
        account_type="Visa",
    )
    return replace(details, **changes)
