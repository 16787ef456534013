import pytest

from reference_db_service.errors import UnknownProduct
from reference_db_service.rules import (
    OrderConflict,
    OrderLine,
    OrderPaymentState,
    PaymentWrite,
    decide_payment_write,
    order_total_cents,
    price_lines,
    react_to_payment,
)
from reference_db_service.statuses import OrderPaymentStatus, OrderStatus, PaymentStatus

UNPAID = OrderPaymentState(OrderStatus.PENDING, OrderPaymentStatus.UNPAID, None)


def state(status: OrderStatus, payment_status: OrderPaymentStatus, payment_id: str | None) -> OrderPaymentState:
    return OrderPaymentState(status, payment_status, payment_id)


class TestReactToPayment:
    def test_approval_marks_a_pending_order_paid_by_that_payment(self) -> None:
        assert react_to_payment(UNPAID, payment_id="pay_1", status=PaymentStatus.APPROVED) == state(
            OrderStatus.PAID, OrderPaymentStatus.APPROVED, "pay_1"
        )

    def test_repeated_approval_by_the_same_payment_changes_nothing(self) -> None:
        paid = state(OrderStatus.PAID, OrderPaymentStatus.APPROVED, "pay_1")
        assert react_to_payment(paid, payment_id="pay_1", status=PaymentStatus.APPROVED) == paid

    def test_approval_by_another_payment_of_a_paid_order_is_a_conflict(self) -> None:
        paid = state(OrderStatus.PAID, OrderPaymentStatus.APPROVED, "pay_1")
        assert (
            react_to_payment(paid, payment_id="pay_2", status=PaymentStatus.APPROVED)
            is OrderConflict.PAID_BY_OTHER_PAYMENT
        )

    def test_approval_of_a_cancelled_order_is_a_conflict(self) -> None:
        cancelled = state(OrderStatus.CANCELLED, OrderPaymentStatus.UNPAID, None)
        assert (
            react_to_payment(cancelled, payment_id="pay_1", status=PaymentStatus.APPROVED)
            is OrderConflict.ORDER_CANCELLED
        )

    @pytest.mark.parametrize(
        "status",
        [PaymentStatus.PROCESSING, PaymentStatus.DECLINED, PaymentStatus.FAILED, PaymentStatus.UNKNOWN],
    )
    def test_a_paid_order_never_regresses_to_a_non_refund_status(self, status: PaymentStatus) -> None:
        paid = state(OrderStatus.PAID, OrderPaymentStatus.APPROVED, "pay_1")
        assert react_to_payment(paid, payment_id="pay_1", status=status) == paid
        assert react_to_payment(paid, payment_id="pay_2", status=status) == paid

    @pytest.mark.parametrize("status", [PaymentStatus.REFUNDED, PaymentStatus.VOIDED])
    def test_refund_of_the_paying_payment_keeps_the_order_paid_and_records_the_refund(
        self, status: PaymentStatus
    ) -> None:
        paid = state(OrderStatus.PAID, OrderPaymentStatus.APPROVED, "pay_1")
        assert react_to_payment(paid, payment_id="pay_1", status=status) == state(
            OrderStatus.PAID, OrderPaymentStatus(status.value), "pay_1"
        )

    def test_refund_of_another_payment_leaves_a_paid_order_alone(self) -> None:
        paid = state(OrderStatus.PAID, OrderPaymentStatus.APPROVED, "pay_1")
        assert react_to_payment(paid, payment_id="pay_2", status=PaymentStatus.REFUNDED) == paid

    def test_a_late_approval_after_a_refund_does_not_undo_the_refund(self) -> None:
        refunded = state(OrderStatus.PAID, OrderPaymentStatus.REFUNDED, "pay_1")
        assert react_to_payment(refunded, payment_id="pay_1", status=PaymentStatus.APPROVED) == refunded

    def test_a_late_processing_after_a_decline_of_the_same_payment_is_ignored(self) -> None:
        declined = state(OrderStatus.PENDING, OrderPaymentStatus.DECLINED, "pay_1")
        assert react_to_payment(declined, payment_id="pay_1", status=PaymentStatus.PROCESSING) == declined

    def test_a_decline_records_the_payment_on_a_pending_order(self) -> None:
        assert react_to_payment(UNPAID, payment_id="pay_1", status=PaymentStatus.DECLINED) == state(
            OrderStatus.PENDING, OrderPaymentStatus.DECLINED, "pay_1"
        )

    def test_a_newer_attempt_replaces_a_declined_one(self) -> None:
        declined = state(OrderStatus.PENDING, OrderPaymentStatus.DECLINED, "pay_1")
        assert react_to_payment(declined, payment_id="pay_2", status=PaymentStatus.PROCESSING) == state(
            OrderStatus.PENDING, OrderPaymentStatus.PROCESSING, "pay_2"
        )

    def test_an_older_attempt_does_not_replace_the_current_one(self) -> None:
        processing = state(OrderStatus.PENDING, OrderPaymentStatus.PROCESSING, "pay_2")
        assert (
            react_to_payment(processing, payment_id="pay_1", status=PaymentStatus.DECLINED, supersedes_current=False)
            == processing
        )

    def test_an_older_attempt_still_approves_a_pending_order(self) -> None:
        # The charge happened; the order is paid whichever attempt it came from.
        processing = state(OrderStatus.PENDING, OrderPaymentStatus.DECLINED, "pay_2")
        assert react_to_payment(
            processing, payment_id="pay_1", status=PaymentStatus.APPROVED, supersedes_current=False
        ) == state(OrderStatus.PAID, OrderPaymentStatus.APPROVED, "pay_1")


class TestDecidePaymentWrite:
    def test_an_unknown_payment_is_created(self) -> None:
        assert decide_payment_write(stored_version=None, incoming_version=0) is PaymentWrite.CREATE

    def test_a_newer_version_updates(self) -> None:
        assert decide_payment_write(stored_version=3, incoming_version=4) is PaymentWrite.UPDATE

    @pytest.mark.parametrize("incoming", [3, 2, 0])
    def test_the_same_or_an_older_version_is_ignored(self, incoming: int) -> None:
        assert decide_payment_write(stored_version=3, incoming_version=incoming) is PaymentWrite.IGNORE


class TestPriceLines:
    def test_unit_prices_are_copied_from_the_products_in_item_order(self) -> None:
        lines = price_lines([(2, 1), (1, 3)], {1: 1999, 2: 2500})
        assert lines == [OrderLine(2, 1, 2500), OrderLine(1, 3, 1999)]

    def test_unknown_products_are_named_in_the_error(self) -> None:
        with pytest.raises(UnknownProduct, match="7, 9"):
            price_lines([(9, 1), (1, 1), (7, 2)], {1: 100})


class TestOrderTotalCents:
    def test_total_is_lines_plus_shipping_and_tax(self) -> None:
        lines = [OrderLine(1, 3, 1999), OrderLine(2, 1, 450)]
        assert order_total_cents(lines, shipping_cents=500, tax_cents=None) == 3 * 1999 + 450 + 500

    def test_three_mugs_cost_59_97(self) -> None:
        assert order_total_cents([OrderLine(1, 3, 1999)], shipping_cents=None, tax_cents=None) == 5997
