"""HTTP models of the payment API: `PayRequest` in, the payment resource and problem details out.

`PayRequest` accepts the preferred body (`payment: {opaque_data | card}`) and the original service's flat
body (`card_number`, `expiration_date`, `card_code`). Both forbid unknown fields. Card fields are `SecretStr`
from the moment they are parsed. Replies are serialised with orjson from plain dicts (`payment_body`);
`PaymentResponse` documents that shape in OpenAPI, and a test holds the two together.
"""

from datetime import date, datetime
from typing import Annotated, Any, Final

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, WithJsonSchema, model_validator

from payment_service.domain.errors import InvalidCard
from payment_service.domain.money import BoundedDecimal
from payment_service.domain.payments import CardDetails, OpaqueData, Payment, PaymentMethod, PaymentStatus
from payment_service.domain.refunds import Refund, RefundKind, RefundOrigin, RefundStatus

PROBLEM_JSON: Final = "application/problem+json"


def _id_text(value: object) -> object:
    # The original front ends send numeric ids; ours are strings.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Order, customer and payment ids: what the db-service and this service mint, and nothing that could
# change a URL (no `/`, `.`, `?`, `#`, `%` or non-ASCII). Checked at the edge; the db-service client
# percent-encodes every path segment besides.
ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
ID_DESCRIPTION: Final = f"An id matching `{ID_PATTERN}`; a JSON integer is read as its decimal text."
IdText = Annotated[
    str,
    BeforeValidator(_id_text),
    Field(min_length=1, max_length=64, pattern=ID_PATTERN),
    # Written out: pydantic leaves the pattern and the integers accepted by `_id_text` out of the schema.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": 64},
                {"type": "integer", "minimum": -(10**62), "maximum": 10**63 - 1},
            ],
            "description": ID_DESCRIPTION,
        }
    ),
]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpaqueDataIn(RequestModel):
    descriptor: str = Field(min_length=1, max_length=64, examples=["COMMON.ACCEPT.INAPP.PAYMENT"])
    value: SecretStr = Field(min_length=1, max_length=8192)


class CardIn(RequestModel):
    number: SecretStr = Field(min_length=12, max_length=23, description="Card number; digits, spaces or dashes.")
    expiration: str = Field(min_length=4, max_length=7, description="YYYY-MM (MM/YY and MMYY are accepted).")
    cvv: SecretStr | None = Field(default=None, min_length=3, max_length=4)


def _present(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"type": "object"}}}


def _absent(*names: str) -> dict[str, Any]:
    # Absent or null: the model reads a null field as a missing one.
    return {"properties": {name: {"type": "null"} for name in names}}


class PaymentMethodIn(RequestModel):
    # What `_exactly_one` enforces, told to schema-driven clients.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"allOf": [_present("opaque_data"), _absent("card")]},
                {"allOf": [_present("card"), _absent("opaque_data")]},
            ]
        }
    )

    opaque_data: OpaqueDataIn | None = None
    card: CardIn | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "PaymentMethodIn":
        if (self.opaque_data is None) == (self.card is None):
            raise ValueError("payment needs exactly one of opaque_data or card")
        return self


class PayRequest(RequestModel):
    order_id: IdText
    payment: PaymentMethodIn | None = None
    customer_id: IdText | None = Field(default=None, description="Optional; must equal the token's subject.")
    amount: BoundedDecimal | None = Field(default=None, description="Optional; must equal the order total.", gt=0)
    # The original service's flat card fields.
    card_number: SecretStr | None = Field(default=None, min_length=12, max_length=23)
    expiration_date: str | None = Field(default=None, min_length=4, max_length=7)
    card_code: SecretStr | None = Field(default=None, min_length=3, max_length=4)

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            # What `_one_shape` enforces: `payment`, or the flat card fields, never both.
            "oneOf": [
                {"allOf": [_present("payment"), _absent("card_number", "expiration_date", "card_code")]},
                {
                    "required": ["card_number", "expiration_date"],
                    "properties": {
                        "card_number": {"type": "string"},
                        "expiration_date": {"type": "string"},
                        "payment": {"type": "null"},
                    },
                },
            ],
            "examples": [
                {
                    "order_id": "1001",
                    "payment": {
                        "opaque_data": {"descriptor": "COMMON.ACCEPT.INAPP.PAYMENT", "value": "eyJjb2RlIjoi..."}
                    },
                    "customer_id": "42",
                    "amount": "59.97",
                },
                {
                    "order_id": "1001",
                    "payment": {"card": {"number": "4111111111111111", "expiration": "2030-12", "cvv": "123"}},
                },
                {
                    "order_id": "1001",
                    "customer_id": "42",
                    "amount": "59.97",
                    "card_number": "4111111111111111",
                    "expiration_date": "2030-12",
                    "card_code": "123",
                },
            ],
        },
    )

    @model_validator(mode="after")
    def _one_shape(self) -> "PayRequest":
        flat = self.card_number is not None or self.expiration_date is not None or self.card_code is not None
        if self.payment is not None and flat:
            raise ValueError("send either payment or the flat card fields, not both")
        if self.payment is None and (self.card_number is None or self.expiration_date is None):
            raise ValueError("payment (or card_number and expiration_date) is required")
        return self

    @property
    def is_raw_card(self) -> bool:
        return self.card_number is not None or (self.payment is not None and self.payment.card is not None)

    def payment_method(self, *, today: date) -> PaymentMethod:
        """The domain payment method. Raises: InvalidCard (Luhn, expiry, CVV form)."""
        if self.payment is not None and self.payment.opaque_data is not None:
            opaque = self.payment.opaque_data
            return OpaqueData(descriptor=opaque.descriptor, value=opaque.value)
        if self.payment is not None and self.payment.card is not None:
            card = self.payment.card
            number, expiration, cvv = card.number, card.expiration, card.cvv
        else:
            if self.card_number is None or self.expiration_date is None:  # excluded by _one_shape
                raise InvalidCard("card_number and expiration_date are required")
            number, expiration, cvv = self.card_number, self.expiration_date, self.card_code
        return CardDetails.parse(
            number=number.get_secret_value(),
            expiration=expiration,
            cvv=cvv.get_secret_value() if cvv is not None else None,
            today=today,
        )


class GatewayResponse(BaseModel):
    name: str = "authorize.net"
    transaction_id: str | None = None
    auth_code: str | None = None
    response_code: str | None = None
    reason_code: str | None = None
    message: str | None = None
    avs_result: str | None = None
    cvv_result: str | None = None
    account_number: str | None = Field(default=None, examples=["XXXX1111"])
    account_type: str | None = None


class PaymentResponse(BaseModel):
    """The payment resource: never a card number or CVV, only the masked account number."""

    id: str
    order_id: str
    customer_id: str
    status: PaymentStatus
    amount: str
    currency: str
    gateway: GatewayResponse | None = None
    created_at: datetime
    updated_at: datetime
    refunded_amount: str = Field(description="What refunds and voids gave back so far.")


class RefundRequest(RequestModel):
    amount: BoundedDecimal | None = Field(
        default=None,
        gt=0,
        description="Optional; all that is left when absent. At most the captured amount less earlier refunds.",
    )
    reason: str | None = Field(default=None, min_length=1, max_length=255)


class RefundGatewayResponse(BaseModel):
    name: str = "authorize.net"
    transaction_id: str | None = None
    response_code: str | None = None
    reason_code: str | None = None
    message: str | None = None
    account_number: str | None = None
    account_type: str | None = None


class RefundResponse(BaseModel):
    """A refund or void of a payment."""

    id: str
    payment_id: str
    kind: RefundKind
    amount: str
    currency: str
    status: RefundStatus
    origin: RefundOrigin
    reason: str | None = None
    gateway: RefundGatewayResponse | None = None
    created_at: datetime
    updated_at: datetime


def refund_dict(refund: Refund) -> dict[str, Any]:
    result = refund.gateway
    return {
        "id": refund.refund_id,
        "payment_id": refund.payment_id,
        "kind": refund.kind.value,
        "amount": str(refund.amount.amount),
        "currency": refund.amount.currency,
        "status": refund.status.value,
        "origin": refund.origin.value,
        "reason": refund.reason,
        "gateway": {
            "name": result.name,
            "transaction_id": result.transaction_id,
            "response_code": result.response_code,
            "reason_code": result.reason_code,
            "message": result.message,
            "account_number": result.account_number,
            "account_type": result.account_type,
        }
        if result is not None
        else None,
        "created_at": _timestamp(refund.created_at),
        "updated_at": _timestamp(refund.updated_at),
    }


class PaymentListResponse(BaseModel):
    payments: list[PaymentResponse]


class ProblemResponse(BaseModel):
    """RFC 9457 problem details, with our stable `code`."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    request_id: str | None = None
    payment: PaymentResponse | None = None
    reason_code: str | None = None
    errors: list[dict[str, Any]] | None = None


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def payment_dict(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.payment_id,
        "order_id": payment.order_id,
        "customer_id": payment.customer_id,
        "status": payment.status.value,
        "amount": str(payment.amount.amount),
        "currency": payment.amount.currency,
        "gateway": payment.gateway.as_dict() if payment.gateway is not None else None,
        "created_at": _timestamp(payment.created_at),
        "updated_at": _timestamp(payment.updated_at),
        "refunded_amount": str(payment.refunded_amount),
    }


def payment_body(payment: Payment) -> bytes:
    return orjson.dumps(payment_dict(payment))
