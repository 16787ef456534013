"""Typed factories for the gateway tests (unit and integration)."""

from dataclasses import replace
from decimal import Decimal
from typing import Any

from pydantic import SecretStr

from payment_service.domain.money import Money
from payment_service.domain.payments import BillTo, CardDetails, ChargeRequest, LineItem, OpaqueData
from payment_service.settings import GatewaySettings

VISA = "4111111111111111"


def make_card(number: str = VISA, *, year: int = 2031, month: int = 8, cvv: str | None = "123") -> CardDetails:
    return CardDetails(SecretStr(number), year, month, SecretStr(cvv) if cvv is not None else None)


def make_opaque_data(value: str = "eyJjb2RlIjoiNTBfMl8wNjAwMDUifQ") -> OpaqueData:
    return OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", SecretStr(value))


def make_bill_to(**overrides: Any) -> BillTo:
    bill_to = BillTo("Jo", "Rivera", "1 Main St", "Indianapolis", "IN", "46201", "US")
    return replace(bill_to, **overrides)


def make_line_items(count: int, *, unit_price: str = "9.99") -> tuple[LineItem, ...]:
    return tuple(LineItem(str(index), f"Widget {index}", 1, Decimal(unit_price)) for index in range(1, count + 1))


def make_charge_request(**overrides: Any) -> ChargeRequest:
    request = ChargeRequest(
        amount=Money.of("24.99"),
        payment_method=make_card(),
        invoice_number="ORD-7731",
        ref_id="att-7731-1",
        line_items=make_line_items(2, unit_price="12.49"),
        customer_id="cust-88",
        customer_email="jo@example.test",
        bill_to=make_bill_to(),
        description="2 widgets",
        duplicate_window_s=600,
    )
    return replace(request, **overrides)


def make_settings(**overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "endpoint": "http://gateway.test/xml/v1/request.api",
        "login_id": "login-1",
        "transaction_key": SecretStr("Key0123456789abc"),
    }
    values.update(overrides)
    return GatewaySettings(**values)
