from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.domain.transactions import GatewayTransactionStatus, TransactionDetails, TransactionKind
from payment_service.services.reconciliation import (
    NOT_FOUND_MESSAGE,
    adopt_transaction,
    is_duplicate,
    is_same_charge,
    mark_not_charged,
)

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


class TestIsSameCharge:
    def test_a_charge_of_the_same_invoice_amount_and_card_matches(self) -> None:
        assert is_same_charge(make_payment(), make_details())

    @pytest.mark.parametrize(
        "changes",
        [
            {"invoice_number": "1002"},
            {"requested_amount": Decimal("59.98")},
            {"account_number": "XXXX0015"},
            {"kind": TransactionKind.REFUND},
        ],
        ids=["other-invoice", "other-amount", "other-card", "a-refund"],
    )
    def test_any_difference_is_another_transaction(self, changes: dict[str, Any]) -> None:
        assert not is_same_charge(make_payment(), make_details(**changes))

    def test_an_unknown_card_of_ours_matches_on_invoice_and_amount(self) -> None:
        assert is_same_charge(make_payment(card_last4=None), make_details(account_number="XXXX0015"))


class TestAdoptTransaction:
    def test_a_captured_transaction_makes_the_payment_approved_one_version_on(self) -> None:
        adopted = adopt_transaction(make_payment(), make_details(), now=LATER)

        assert adopted.status is PaymentStatus.APPROVED
        assert (adopted.version, adopted.updated_at, adopted.captured_amount) == (3, LATER, Decimal("59.97"))
        assert adopted.gateway == GatewayResult(
            transaction_id="60123456789",
            auth_code="QW7T2K",
            response_code="1",
            reason_code="1",
            message="This transaction has been approved.",
            avs_result="Y",
            cvv_result="M",
            account_number="XXXX1111",
            account_type="Visa",
        )

    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            (GatewayTransactionStatus.DECLINED, PaymentStatus.DECLINED),
            (GatewayTransactionStatus.VOIDED, PaymentStatus.VOIDED),
            (GatewayTransactionStatus.HELD_FOR_REVIEW, PaymentStatus.HELD_FOR_REVIEW),
        ],
    )
    def test_other_gateway_statuses_capture_nothing(
        self, status: GatewayTransactionStatus, expected: PaymentStatus
    ) -> None:
        adopted = adopt_transaction(make_payment(), make_details(status=status), now=LATER)

        assert (adopted.status, adopted.captured_amount) == (expected, Decimal(0))

    def test_the_card_is_learnt_from_the_gateway_when_paid_with_opaque_data(self) -> None:
        adopted = adopt_transaction(make_payment(card_last4=None, card_brand=None), make_details(), now=LATER)

        assert (adopted.card_last4, adopted.card_brand) == ("1111", "Visa")


class TestMarkNotCharged:
    def test_the_payment_fails_one_version_on_keeping_the_gateways_codes(self) -> None:
        duplicate = make_payment(gateway=GatewayResult(response_code="3", reason_code="11", message="Duplicate."))

        failed = mark_not_charged(duplicate, now=LATER)

        assert (failed.status, failed.version, failed.updated_at) == (PaymentStatus.FAILED, 3, LATER)
        assert failed.gateway == GatewayResult(response_code="3", reason_code="11", message=NOT_FOUND_MESSAGE)


class TestIsDuplicate:
    def test_reason_11_is_a_duplicate(self) -> None:
        assert is_duplicate(make_payment(gateway=GatewayResult(response_code="3", reason_code="11")))

    def test_a_lost_answer_is_not(self) -> None:
        assert not is_duplicate(make_payment())
