from decimal import Decimal

import pytest

from payment_service.domain.errors import (
    AmountPrecisionExceeded,
    CurrencyNotAccepted,
    DbServiceDataInvalid,
    OrderNotFound,
    OrderNotPayable,
)
from payment_service.domain.money import Money
from payment_service.domain.orders import Order, OrderItem, amount_due, ensure_payable


def make_order(
    *,
    items: tuple[OrderItem, ...] = (OrderItem("1", 3, Decimal("19.99")),),
    status: str = "pending",
    payment_status: str = "unpaid",
    shipping: str | None = None,
    tax: str | None = None,
    currency: str = "USD",
) -> Order:
    return Order(
        order_id="1001",
        customer_id="42",
        status=status,
        payment_status=payment_status,
        currency=currency,
        items=items,
        shipping_amount=Decimal(shipping) if shipping else None,
        tax_amount=Decimal(tax) if tax else None,
    )


class TestAmountDue:
    def test_items_times_unit_price(self) -> None:
        assert amount_due(make_order()) == Money.of("59.97")

    def test_shipping_and_tax_are_added(self) -> None:
        assert amount_due(make_order(shipping="4.50", tax="3.33")) == Money.of("67.80")

    def test_fractions_of_a_cent_are_refused_never_rounded(self) -> None:
        order = make_order(items=(OrderItem("1", 1, Decimal("0.105")), OrderItem("2", 2, Decimal("1.00"))))

        with pytest.raises(AmountPrecisionExceeded):
            amount_due(order)

    def test_a_yen_order_priced_in_cents_is_refused_not_charged_60(self) -> None:
        with pytest.raises(AmountPrecisionExceeded) as raised:
            amount_due(make_order(items=(OrderItem("1", 3, Decimal("19.99")),), currency="JPY"))

        assert raised.value.code == "amount_precision_exceeds_currency"

    def test_three_decimal_currencies_keep_their_third_decimal(self) -> None:
        order = make_order(items=(OrderItem("1", 1, Decimal("1.235")),), currency="KWD")

        assert amount_due(order) == Money(Decimal("1.235"), "KWD")

    @pytest.mark.parametrize(("shipping", "tax"), [("-1.00", None), (None, "-0.01")])
    def test_a_negative_shipping_or_tax_amount_is_a_db_service_data_error(
        self, shipping: str | None, tax: str | None
    ) -> None:
        # The total may still be positive: 59.97 - 0.01 would have been charged, or failed to format.
        with pytest.raises(DbServiceDataInvalid):
            amount_due(make_order(shipping=shipping, tax=tax))

    def test_a_negative_unit_price_is_a_db_service_data_error(self) -> None:
        items = (OrderItem("1", 3, Decimal("19.99")), OrderItem("2", 1, Decimal("-5.00")))

        with pytest.raises(DbServiceDataInvalid):
            ensure_payable(make_order(items=items), customer_id="42")

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

    def test_an_order_in_a_currency_the_merchant_does_not_take_is_refused(self) -> None:
        with pytest.raises(CurrencyNotAccepted):
            ensure_payable(make_order(currency="EUR"), customer_id="42", accepted_currencies=frozenset({"USD"}))

        ensure_payable(make_order(currency="EUR"), customer_id="42", accepted_currencies=frozenset({"USD", "EUR"}))
