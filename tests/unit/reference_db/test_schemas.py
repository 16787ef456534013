import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from reference_db_service.schemas import (
    OrderCreateRequest,
    PaymentPutRequest,
    PaymentRecord,
    ProductCreateRequest,
    parse_numeric_id,
)


def payment_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": "1001",
        "customer_id": "42",
        "status": "approved",
        "amount": "59.97",
        "currency": "USD",
        "gateway": {"name": "authorize.net", "transaction_id": "80012345678", "account_number": "XXXX1111"},
        "created_at": "2025-01-02T03:04:05.123456Z",
        "updated_at": "2025-01-02T03:04:06Z",
        "version": 1,
    }
    return body | overrides


class TestParseNumericId:
    @pytest.mark.parametrize(("value", "expected"), [("42", 42), (42, 42), ("2147483647", 2**31 - 1)])
    def test_positive_ids_parse(self, value: object, expected: int) -> None:
        assert parse_numeric_id(value) == expected

    @pytest.mark.parametrize("value", ["0", "-1", "042", "1.0", "abc", "", "2147483648", True, 4.0, None])
    def test_other_values_are_rejected(self, value: object) -> None:
        with pytest.raises(ValueError, match="positive integer id"):
            parse_numeric_id(value)


class TestPaymentPutRequest:
    def test_a_payment_resource_with_version_parses(self) -> None:
        request = PaymentPutRequest.model_validate_json(json.dumps(payment_body()))
        assert request.order_id == 1001
        assert request.amount == Decimal("59.97")
        assert request.created_at == datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)

    def test_unknown_top_level_and_gateway_fields_are_dropped(self) -> None:
        body = payment_body(refunded_amount="0.00", gateway={"name": "authorize.net", "raw": "x"})
        request = PaymentPutRequest.model_validate(body)
        assert request.gateway is not None
        assert "raw" not in request.gateway.model_dump()

    @pytest.mark.parametrize("account_number", ["4111111111111111", "411111XXXXXX1111"])
    def test_an_unmasked_card_number_is_rejected(self, account_number: str) -> None:
        with pytest.raises(ValidationError, match="masked"):
            PaymentPutRequest.model_validate(payment_body(gateway={"account_number": account_number}))

    def test_naive_timestamps_are_rejected(self) -> None:
        with pytest.raises(ValidationError, match="timezone"):
            PaymentPutRequest.model_validate(payment_body(created_at="2025-01-02T03:04:05"))

    @pytest.mark.parametrize(
        "overrides",
        [
            {"amount": 59.97},
            {"amount": "59.975"},
            {"status": "paid"},
            {"version": -1},
            {"version": "2"},
            {"currency": "usd"},
        ],
    )
    def test_bad_values_are_rejected(self, overrides: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            PaymentPutRequest.model_validate(payment_body(**overrides))


class TestPaymentRecord:
    def test_timestamps_render_in_utc(self) -> None:
        plus_two = timezone(timedelta(hours=2))
        record = PaymentRecord(
            id="pay_1",
            order_id="1",
            customer_id="2",
            status="approved",  # type: ignore[arg-type]
            amount="1.00",
            currency="USD",
            gateway=None,
            created_at=datetime(2025, 1, 1, 12, tzinfo=plus_two),
            updated_at=datetime(2025, 1, 1, 12, tzinfo=plus_two),
            version=1,
        )
        assert record.model_dump(mode="json")["created_at"] == "2025-01-01T10:00:00Z"


class TestCreateRequests:
    def test_order_currency_defaults_to_usd(self) -> None:
        order = OrderCreateRequest.model_validate({"customer_id": "42", "items": [{"product_id": "1", "quantity": 3}]})
        assert order.currency == "USD"

    @pytest.mark.parametrize(
        "items",
        [
            [],
            [{"product_id": "1", "quantity": 0}],
            [{"product_id": "1", "quantity": "2"}],
            [{"product_id": "x", "quantity": 1}],
        ],
    )
    def test_bad_order_items_are_rejected(self, items: list[dict[str, Any]]) -> None:
        with pytest.raises(ValidationError):
            OrderCreateRequest.model_validate({"customer_id": "42", "items": items})

    def test_more_than_100_items_are_rejected(self) -> None:
        items = [{"product_id": "1", "quantity": 1}] * 101
        with pytest.raises(ValidationError, match="at most 100"):
            OrderCreateRequest.model_validate({"customer_id": "42", "items": items})

    def test_unknown_fields_are_rejected(self) -> None:
        with pytest.raises(ValidationError, match="Extra inputs"):
            ProductCreateRequest.model_validate({"name": "Mug", "price": "1.00", "colour": "red"})

    def test_a_float_price_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="decimal string"):
            ProductCreateRequest.model_validate_json('{"name": "Mug", "price": 19.99}')
