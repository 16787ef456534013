from decimal import Decimal

import pytest
from pydantic import ValidationError

from payment_service.db_service.wire import CustomerWire, OrderWire, product_list_adapter


class TestOrderWire:
    def test_numeric_ids_become_strings_and_unknown_fields_are_ignored(self) -> None:
        wire = OrderWire.model_validate_json(
            b'{"id": 1001, "customer_id": 42, "status": "pending", "payment_status": "unpaid", "currency": "USD",'
            b' "items": [{"product_id": 7, "quantity": 3, "unit_price": "19.99", "sku": "M-1"}],'
            b' "tax_amount": "1.20", "created_at": "2026-01-01T00:00:00Z"}'
        )

        order = wire.to_domain()

        assert (order.order_id, order.customer_id, order.items[0].product_id) == ("1001", "42", "7")
        assert order.items[0].unit_price == Decimal("19.99")
        assert order.tax_amount == Decimal("1.20")
        assert order.shipping_amount is None

    def test_missing_lines_are_refused(self) -> None:
        with pytest.raises(ValidationError):
            OrderWire.model_validate_json(b'{"id": "1", "customer_id": "2", "status": "pending"}')


class TestCustomerAndProducts:
    def test_customer_converts_with_its_address(self) -> None:
        customer = CustomerWire.model_validate(
            {
                "id": "42",
                "email": "a@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "address": {"line1": "1 St", "city": "X", "state": "IL", "zip": "62701", "country": "US"},
                "loyalty": "gold",
            }
        ).to_domain()

        assert customer.address.zip == "62701"
        assert customer.phone is None

    def test_product_list_is_a_bare_json_list(self) -> None:
        products = product_list_adapter.validate_json(b'[{"id": 1, "name": "Mug", "price": "19.99"}]')

        assert products[0].to_domain().price == Decimal("19.99")


class TestBoundedAmounts:
    def test_an_unbounded_price_from_the_db_service_is_refused_before_any_arithmetic(self) -> None:
        with pytest.raises(ValidationError, match="decimal_max_digits"):
            OrderWire.model_validate_json(
                b'{"id": "1", "customer_id": "2", "status": "pending",'
                b' "items": [{"product_id": "7", "quantity": 1, "unit_price": "1E+1000000"}]}'
            )
