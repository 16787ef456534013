from decimal import Decimal

import pytest

from payment_service.domain.errors import OrderNotFound, OrderNotPayable
from payment_service.domain.money import Money
from payment_service.domain.orders import Order, OrderItem, amount_due, ensure_payable


def make_order(
    *,
    items: tuple[OrderItem, ...] = (OrderItem("1", 3, Decimal("19.99")),),
    status: str = "pending",
    payment_status: str = "unpaid",
    shipping: str | None = None,
    tax: str | None = None,
) -> Order:
    return Order(
        order_id="1001",
        customer_id="42",
        status=status,
        payment_status=payment_status,
        currency="USD",
        items=items,
        shipping_amount=Decimal(shipping) if shipping else None,
        tax_amount=Decimal(tax) if tax else None,
    )


class TestAmountDue:
    def test_items_times_unit_price(self) -> None:
        assert amount_due(make_order()) == Money.of("59.97")

    def test_shipping_and_tax_are_added(self) -> None:
        assert amount_due(make_order(shipping="4.50", tax="3.33")) == Money.of("67.80")

    def test_fractions_of_a_cent_are_rounded_half_up(self) -> None:
        order = make_order(items=(OrderItem("1", 1, Decimal("0.105")), OrderItem("2", 2, Decimal("1.00"))))

        assert amount_due(order).amount == Decimal("2.11")

    def test_client_amount_compares_exactly(self) -> None:
        assert amount_due(make_order()).amount != Decimal("0.01")
        assert amount_due(make_order()).amount == Decimal("59.970")


class TestEnsurePayable:
    def test_pending_unpaid_order_of_the_customer_is_payable(self) -> None:
        ensure_payable(make_order(), customer_id="42")

    def test_order_of_someone_else_is_reported_as_not_found(self) -> None:
        with pytest.raises(OrderNotFound):
            ensure_payable(make_order(), customer_id="43")

    @pytest.mark.parametrize(
        "order",
        [
            make_order(status="paid"),
            make_order(status="cancelled"),
            make_order(payment_status="approved"),
            make_order(items=()),
            make_order(items=(OrderItem("1", 1, Decimal(0)),)),
        ],
    )
    def test_orders_that_cannot_be_paid_now_are_refused(self, order: Order) -> None:
        with pytest.raises(OrderNotPayable):
            ensure_payable(order, customer_id="42")
