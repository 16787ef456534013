from decimal import Decimal

import pytest

from payment_service.domain.payments import GatewayResult, PaymentStatus
from payment_service.domain.transactions import GatewayTransactionStatus
from payment_service.services.reconciliation import NOT_FOUND_MESSAGE, adopt_transaction, is_duplicate, mark_not_charged
from tests.unit.services.factories import LATER, make_details, make_payment


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
