from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.api.payments import render_pay_response
from payment_service.api.schemas import PaymentResponse, PayRequest
from payment_service.domain.errors import InvalidCard
from payment_service.domain.money import Money
from payment_service.domain.payments import CardDetails, GatewayResult, OpaqueData, Payment, PaymentStatus

TODAY = date(2026, 1, 15)
VISA = "4111111111111111"


def preferred(**extra: Any) -> dict[str, Any]:
    return {"order_id": "1001", "payment": {"card": {"number": VISA, "expiration": "2030-12", "cvv": "123"}}, **extra}


def flat(**extra: Any) -> dict[str, Any]:
    return {
        "order_id": 1001,
        "customer_id": 42,
        "amount": "59.97",
        "card_number": VISA,
        "expiration_date": "12/30",
        "card_code": "123",
        **extra,
    }


class TestPayRequest:
    def test_preferred_shape_with_a_card_parses_to_card_details(self) -> None:
        request = PayRequest.model_validate(preferred(amount="59.97", customer_id="42"))

        method = request.payment_method(today=TODAY)

        assert isinstance(method, CardDetails)
        assert (method.last4, method.brand, method.expiration_year, method.expiration_month) == (
            "1111",
            "Visa",
            2030,
            12,
        )
        assert request.amount == Decimal("59.97")
        assert request.is_raw_card

    def test_preferred_shape_with_opaque_data_is_not_raw_card(self) -> None:
        body = {
            "order_id": "1001",
            "payment": {"opaque_data": {"descriptor": "COMMON.ACCEPT.INAPP.PAYMENT", "value": "n1"}},
        }
        request = PayRequest.model_validate(body)

        method = request.payment_method(today=TODAY)

        assert isinstance(method, OpaqueData)
        assert not request.is_raw_card

    def test_flat_shape_of_the_original_service_parses_with_numeric_ids(self) -> None:
        request = PayRequest.model_validate(flat())

        method = request.payment_method(today=TODAY)

        assert (request.order_id, request.customer_id) == ("1001", "42")
        assert isinstance(method, CardDetails)
        assert method.expiration_year == 2030

    @pytest.mark.parametrize(
        "body",
        [
            preferred(extra_field=1),
            preferred(card_number=VISA),
            {"order_id": "1001"},
            {"order_id": "1001", "payment": {}},
            {
                "order_id": "1001",
                "payment": {
                    "card": {"number": VISA, "expiration": "2030-12"},
                    "opaque_data": {"descriptor": "d", "value": "v"},
                },
            },
            preferred(amount="-1"),
            flat(card_number=None),
        ],
    )
    def test_malformed_bodies_are_refused(self, body: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            PayRequest.model_validate(body)

    def test_card_that_fails_luhn_raises_invalid_card(self) -> None:
        request = PayRequest.model_validate(
            preferred() | {"payment": {"card": {"number": "4111111111111112", "expiration": "2030-12"}}}
        )

        with pytest.raises(InvalidCard):
            request.payment_method(today=TODAY)

    def test_card_number_never_shows_in_repr_or_errors(self) -> None:
        request = PayRequest.model_validate(flat())

        assert VISA not in repr(request)
        with pytest.raises(ValidationError) as caught:
            PayRequest.model_validate(flat(surprise=True))
        assert VISA not in str(caught.value.errors(include_input=False))


def payment(status: PaymentStatus, *, reason_code: str = "1") -> Payment:
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    return Payment(
        payment_id="pay_01TEST",
        order_id="1001",
        customer_id="42",
        status=status,
        amount=Money.of("59.97"),
        invoice_number="1001",
        ref_id="01TEST",
        card_last4="1111",
        card_brand="Visa",
        created_at=now,
        updated_at=now,
        gateway=GatewayResult(transaction_id="800", reason_code=reason_code, account_number="XXXX1111"),
    )


class TestRenderPayResponse:
    @pytest.mark.parametrize(
        ("status", "http_status"),
        [
            (PaymentStatus.APPROVED, 201),
            (PaymentStatus.HELD_FOR_REVIEW, 202),
            (PaymentStatus.UNKNOWN, 202),
            (PaymentStatus.DECLINED, 402),
            (PaymentStatus.FAILED, 502),
        ],
    )
    def test_status_follows_the_outcomes_table(self, status: PaymentStatus, http_status: int) -> None:
        assert render_pay_response(payment(status)).status_code == http_status

    def test_success_body_is_the_payment_resource(self) -> None:
        body = render_pay_response(payment(PaymentStatus.APPROVED)).body

        resource = PaymentResponse.model_validate_json(body)
        assert resource.amount == "59.97"
        assert resource.created_at == datetime(2026, 1, 15, 12, tzinfo=UTC)

    def test_decline_has_a_customer_safe_message_for_its_reason(self) -> None:
        import orjson

        problem = orjson.loads(render_pay_response(payment(PaymentStatus.DECLINED, reason_code="8")).body)

        assert problem["code"] == "payment_declined"
        assert problem["detail"] == "The card has expired."
        assert problem["reason_code"] == "8"
