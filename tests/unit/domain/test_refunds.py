"""The pure refund rules: what may be given back, and what the payment becomes."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from payment_service.api.errors import status_for
from payment_service.api.refunds import render_refund_response
from payment_service.api.schemas import RefundResponse
from payment_service.domain.errors import (
    NothingLeftToRefund,
    PartialVoidNotAllowed,
    PaymentNotRefundable,
    RefundNotAllowed,
)
from payment_service.domain.money import Money
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.domain.refunds import (
    Refund,
    RefundKind,
    RefundOrigin,
    RefundStatus,
    check_refund,
    payment_after_refunds,
    taken_amount,
)

NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)


def payment(status: PaymentStatus = PaymentStatus.APPROVED, *, captured: str = "100.00") -> Payment:
    return Payment(
        payment_id="pay_1",
        order_id="1001",
        customer_id="42",
        status=status,
        amount=Money.of("100.00"),
        invoice_number="1001",
        ref_id="1",
        card_last4="1111",
        card_brand="Visa",
        created_at=NOW,
        updated_at=NOW,
        version=2,
        captured_amount=Decimal(captured),
    )


def refund(amount: str, status: RefundStatus = RefundStatus.SUCCEEDED, kind: RefundKind = RefundKind.REFUND) -> Refund:
    return Refund(
        refund_id=f"ref_{amount}_{status.value}",
        payment_id="pay_1",
        kind=kind,
        amount=Money.of(amount),
        status=status,
        origin=RefundOrigin.API,
        ref_id="R",
        created_at=NOW,
        updated_at=NOW,
    )


class TestCheckRefund:
    def test_refunds_in_flight_and_unknown_count_as_taken_and_failed_ones_do_not(self) -> None:
        refunds = [
            refund("10.00", RefundStatus.SUCCEEDED),
            refund("20.00", RefundStatus.PROCESSING),
            refund("30.00", RefundStatus.UNKNOWN),
            refund("40.00", RefundStatus.FAILED),
        ]

        assert taken_amount(refunds) == Decimal("60.00")
        check_refund(payment(), refunds, kind=RefundKind.REFUND, amount=Decimal("40.00"))
        with pytest.raises(RefundNotAllowed, match="exceeds"):
            check_refund(payment(), refunds, kind=RefundKind.REFUND, amount=Decimal("40.01"))

    @pytest.mark.parametrize("amount", ["0", "-1", "0.001"])
    def test_a_non_positive_or_too_precise_amount_is_refused(self, amount: str) -> None:
        with pytest.raises(RefundNotAllowed):
            check_refund(payment(), [], kind=RefundKind.REFUND, amount=Decimal(amount))

    @pytest.mark.parametrize("status", [PaymentStatus.DECLINED, PaymentStatus.UNKNOWN, PaymentStatus.REFUNDED])
    def test_a_payment_with_nothing_captured_is_not_refundable(self, status: PaymentStatus) -> None:
        with pytest.raises(PaymentNotRefundable):
            check_refund(payment(status), [], kind=RefundKind.REFUND, amount=Decimal("1.00"))

    @pytest.mark.parametrize("amount", ["1.00", "0.001", "0"])
    def test_with_everything_given_back_or_being_given_back_nothing_is_left_whatever_the_amount(
        self, amount: str
    ) -> None:
        in_flight = [refund("60.00"), refund("40.00", RefundStatus.PROCESSING)]

        with pytest.raises(NothingLeftToRefund) as refunded:
            check_refund(payment(PaymentStatus.REFUNDED), [], kind=RefundKind.REFUND, amount=Decimal(amount))
        with pytest.raises(NothingLeftToRefund):
            check_refund(payment(), in_flight, kind=RefundKind.REFUND, amount=Decimal(amount))
        assert (refunded.value.code, status_for(refunded.value)) == ("nothing_left_to_refund", 409)

    def test_a_void_is_whole_or_not_at_all(self) -> None:
        check_refund(payment(), [], kind=RefundKind.VOID, amount=Decimal("100.00"))
        with pytest.raises(PartialVoidNotAllowed, match="settle"):
            check_refund(payment(), [], kind=RefundKind.VOID, amount=Decimal("99.99"))


class TestPaymentAfterRefunds:
    def test_partial_then_full_refunds_move_the_status_and_the_version(self) -> None:
        partly = payment_after_refunds(payment(), [refund("30.00")], now=NOW)
        fully = payment_after_refunds(partly, [refund("30.00"), replace(refund("70.00"), refund_id="r2")], now=NOW)

        assert (partly.status, partly.refunded_amount, partly.version) == (
            PaymentStatus.PARTIALLY_REFUNDED,
            Decimal("30.00"),
            3,
        )
        assert (fully.status, fully.refunded_amount, fully.version) == (PaymentStatus.REFUNDED, Decimal("100.00"), 4)

    def test_a_succeeded_void_gives_everything_back(self) -> None:
        voided = payment_after_refunds(payment(), [refund("100.00", kind=RefundKind.VOID)], now=NOW)
        assert (voided.status, voided.refunded_amount) == (PaymentStatus.VOIDED, Decimal("100.00"))

    def test_refunds_not_yet_succeeded_change_nothing(self) -> None:
        before = payment()
        assert payment_after_refunds(before, [refund("30.00", RefundStatus.UNKNOWN)], now=NOW) is before


class TestRenderRefundResponse:
    def test_statuses_map_to_201_202_and_a_502_problem(self) -> None:
        succeeded = render_refund_response(replace(refund("5.00"), gateway=GatewayResult(transaction_id="9")))
        unknown = render_refund_response(refund("5.00", RefundStatus.UNKNOWN))
        failed = render_refund_response(refund("5.00", RefundStatus.FAILED))

        assert RefundResponse.model_validate_json(succeeded.body).gateway is not None
        assert (succeeded.status_code, unknown.status_code, failed.status_code) == (201, 202, 502)
        assert orjson.loads(failed.body)["code"] == "refund_failed"
