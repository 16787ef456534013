"""HTTP bodies: requests (unknown fields rejected) and the records the service answers with.

Ids are strings on the wire (`"42"`); customers, products and orders use integer ids underneath,
payments use the id the caller chose. Amounts are decimal strings: two places at most for prices,
shipping and tax, and a payment's in its currency's minor unit (`money.py`).
"""

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from reference_db_service.money import check_minor_unit, parse_amount, parse_exact_amount
from reference_db_service.statuses import OrderPaymentStatus, OrderStatus, PaymentStatus

MAX_NUMERIC_ID = 2**31 - 1  # fits every backend's INTEGER primary key
MAX_VERSION = 2**63 - 1
MAX_ORDER_ITEMS = 100
_NUMERIC_ID = re.compile(r"[1-9][0-9]{0,9}")
_PAYMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def parse_numeric_id(value: object) -> int:
    """Accept `"42"` (or 42) and return 42.

    Raises:
        ValueError: for anything that is not a positive integer id in range.
    """
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _NUMERIC_ID.fullmatch(text) or int(text) > MAX_NUMERIC_ID:
        msg = 'must be a positive integer id as a string, e.g. "42"'
        raise ValueError(msg)
    return int(text)


def is_payment_id(value: str) -> bool:
    return _PAYMENT_ID.fullmatch(value) is not None


def _check_payment_id(value: str) -> str:
    if not is_payment_id(value):
        msg = "must be 1-128 characters of letters, digits and _ . : - (e.g. pay_01J…)"
        raise ValueError(msg)
    return value


def _decimal_text(value: object) -> str:
    if isinstance(value, Decimal):  # from Python code (the seed); JSON brings strings
        value = format(value, "f")
    if not isinstance(value, str):
        msg = 'must be a decimal string, e.g. "19.99" (numbers are not accepted, to avoid floats)'
        raise ValueError(msg)  # pydantic reports only ValueError as a validation error
    return value


def _parse_money(value: object) -> Decimal:
    return parse_amount(_decimal_text(value))


def _parse_exact_money(value: object) -> Decimal:
    return parse_exact_amount(_decimal_text(value))


def _check_places(currency: str, *amounts: Decimal | None) -> None:
    for amount in amounts:
        if amount is not None:
            check_minor_unit(amount, currency)


def _check_masked(value: str | None) -> str | None:
    # Only the last four digits of a card may ever be stored.
    if value is not None and sum(char.isdigit() for char in value) > 4:
        msg = "must be masked: at most the last four digits (e.g. XXXX1111)"
        raise ValueError(msg)
    return value


NumericId = Annotated[int, BeforeValidator(parse_numeric_id), PlainSerializer(str, return_type=str)]
PaymentId = Annotated[str, AfterValidator(_check_payment_id)]
Money = Annotated[Decimal, BeforeValidator(_parse_money)]
# Up to three places, as given: checked against the currency of the body it is in.
CurrencyMoney = Annotated[Decimal, BeforeValidator(_parse_exact_money)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
# Field limits follow Authorize.Net's billTo limits, since these values end up there.
Email = Annotated[Text, StringConstraints(max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(RequestModel):
    line1: Annotated[Text, StringConstraints(max_length=60)]
    line2: Annotated[Text, StringConstraints(max_length=60)] | None = None
    city: Annotated[Text, StringConstraints(max_length=40)]
    state: Annotated[Text, StringConstraints(max_length=40)]
    zip: Annotated[Text, StringConstraints(max_length=20)]
    country: Annotated[Text, StringConstraints(max_length=60)]


class CustomerCreateRequest(RequestModel):
    id: NumericId | None = None
    email: Email
    first_name: Annotated[Text, StringConstraints(max_length=50)]
    last_name: Annotated[Text, StringConstraints(max_length=50)]
    phone: Annotated[Text, StringConstraints(max_length=25)] | None = None
    address: Address


class ProductCreateRequest(RequestModel):
    id: NumericId | None = None
    name: Annotated[Text, StringConstraints(max_length=255)]
    sku: Annotated[Text, StringConstraints(max_length=64)] | None = None
    price: Money


class OrderItemRequest(RequestModel):
    product_id: NumericId
    quantity: Annotated[int, Field(ge=1, le=10_000, strict=True)]


class OrderCreateRequest(RequestModel):
    id: NumericId | None = None
    customer_id: NumericId
    currency: Currency = "USD"
    items: Annotated[list[OrderItemRequest], Field(min_length=1, max_length=MAX_ORDER_ITEMS)]
    shipping_amount: Money | None = None
    tax_amount: Money | None = None

    @model_validator(mode="after")
    def _fit_currency(self) -> Self:
        # A JPY order's tax of 0.50 cannot be charged: refused here rather than at payment time.
        _check_places(self.currency, self.shipping_amount, self.tax_amount)
        return self


class OrderPaymentUpdateRequest(RequestModel):
    payment_status: PaymentStatus
    payment_id: PaymentId


class GatewayDetails(BaseModel):
    """What the payment service learned from the gateway; unknown keys are dropped, not stored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Annotated[str, StringConstraints(max_length=64)] | None = None
    transaction_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    auth_code: Annotated[str, StringConstraints(max_length=16)] | None = None
    response_code: Annotated[str, StringConstraints(max_length=8)] | None = None
    reason_code: Annotated[str, StringConstraints(max_length=8)] | None = None
    message: Annotated[str, StringConstraints(max_length=1024)] | None = None
    avs_result: Annotated[str, StringConstraints(max_length=8)] | None = None
    cvv_result: Annotated[str, StringConstraints(max_length=8)] | None = None
    account_number: Annotated[
        Annotated[str, StringConstraints(max_length=32)] | None, AfterValidator(_check_masked)
    ] = None
    account_type: Annotated[str, StringConstraints(max_length=32)] | None = None


class PaymentPutRequest(BaseModel):
    """A payment resource (DESIGN §3) plus its `version`.

    Unknown top-level fields are ignored rather than rejected: the body is an event's payload, and a
    newer payment service may add fields; only the fields below are stored.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: PaymentId | None = None
    order_id: NumericId
    customer_id: NumericId
    status: PaymentStatus
    amount: CurrencyMoney
    currency: Currency
    gateway: GatewayDetails | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    version: Annotated[int, Field(ge=0, le=MAX_VERSION, strict=True)]
    refunded_amount: CurrencyMoney | None = None  # what refunds and voids gave back; absent before any

    @model_validator(mode="after")
    def _fit_currency(self) -> Self:
        # Stored in the currency's minor unit: more places would have to be rounded, so they are refused.
        _check_places(self.currency, self.amount, self.refunded_amount)
        return self


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]


class AddressRecord(BaseModel):
    line1: str
    line2: str | None
    city: str
    state: str
    zip: str
    country: str


class CustomerRecord(BaseModel):
    id: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    address: AddressRecord


class ProductRecord(BaseModel):
    id: str
    name: str
    sku: str | None
    price: str


class OrderItemRecord(BaseModel):
    product_id: str
    quantity: int
    unit_price: str


class OrderRecord(BaseModel):
    id: str
    customer_id: str
    status: OrderStatus
    payment_status: OrderPaymentStatus
    payment_id: str | None
    currency: str
    items: list[OrderItemRecord]
    shipping_amount: str | None
    tax_amount: str | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class PaymentRecord(BaseModel):
    id: str
    order_id: str
    customer_id: str
    status: PaymentStatus
    amount: str
    currency: str
    gateway: GatewayDetails | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int
    refunded_amount: str | None = None


class HealthResponse(BaseModel):
    status: str
