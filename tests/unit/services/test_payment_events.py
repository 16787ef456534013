import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from payment_service.domain.money import Money
from payment_service.domain.orders import Address, Customer, Order, OrderItem, Product
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.services.payment_events import OrderContext, payment_events

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_payment(status: PaymentStatus) -> Payment:
    return Payment(
        payment_id="pay_01ABCDEFGHJKMNPQ",
        order_id="1001",
        customer_id="42",
        status=status,
        amount=Money(Decimal("59.97"), "USD"),
        invoice_number="1001",
        ref_id="01ABCDEFGHJKMNPQ",
        card_last4="1111",
        card_brand="Visa",
        created_at=NOW,
        updated_at=NOW,
        version=3,
        gateway=GatewayResult(transaction_id="60123456789", account_number="XXXX1111", account_type="Visa"),
    )


def make_context() -> OrderContext:
    order = Order(
        order_id="1001",
        customer_id="42",
        status="pending",
        payment_status="unknown",
        currency="USD",
        items=(OrderItem(product_id="7", quantity=3, unit_price=Decimal("19.99")),),
    )
    customer = Customer(
        customer_id="42",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        address=Address(line1="1 Main St", city="Springfield", state="IL", zip="62701", country="US"),
    )
    return OrderContext(order, customer, {"7": Product(product_id="7", name="Blue mug", price=Decimal("19.99"))})


class TestPaymentEvents:
    def test_an_approval_gives_the_payment_event_then_order_paid(self) -> None:
        events = payment_events(make_payment(PaymentStatus.APPROVED), make_context())

        assert [e.event_type for e in events] == ["payment.approved", "order.paid"]
        assert json.loads(events[0].data)["version"] == 3
        paid = json.loads(events[1].data)
        assert paid["order"]["items"][0]["name"] == "Blue mug"
        assert paid["payment"]["transaction_id"] == "60123456789"

    def test_an_approval_without_its_order_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"order\.paid"):
            payment_events(make_payment(PaymentStatus.APPROVED), None)

    def test_a_failure_gives_only_its_payment_event(self) -> None:
        assert [e.event_type for e in payment_events(make_payment(PaymentStatus.FAILED), None)] == ["payment.failed"]

    def test_unknown_and_processing_are_not_published(self) -> None:
        assert payment_events(make_payment(PaymentStatus.UNKNOWN), None) == []
        assert payment_events(make_payment(PaymentStatus.PROCESSING), None) == []
