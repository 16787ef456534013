"""Payments, the card data that pays for them, and what the gateway said about a charge.

Card numbers, CVV and opaque data are `SecretStr` from parsing to the gateway adapter: their repr
is masked, and only `last4` and `brand` travel further.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import SecretStr

from payment_service.domain.errors import InvalidCard
from payment_service.domain.money import Money


class PaymentStatus(StrEnum):
    PROCESSING = "processing"
    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"
    HELD_FOR_REVIEW = "held_for_review"
    UNKNOWN = "unknown"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


# At most one payment per order may be in one of these; a second attempt could charge twice. A partly
# refunded payment still holds the order's money.
ACTIVE_STATUSES = frozenset(
    {
        PaymentStatus.PROCESSING,
        PaymentStatus.UNKNOWN,
        PaymentStatus.HELD_FOR_REVIEW,
        PaymentStatus.APPROVED,
        PaymentStatus.PARTIALLY_REFUNDED,
    }
)
# Statuses that end a charge attempt (refunds may follow); events are published for these and for held_for_review.
TERMINAL_STATUSES = frozenset(
    {
        PaymentStatus.APPROVED,
        PaymentStatus.DECLINED,
        PaymentStatus.FAILED,
        PaymentStatus.PARTIALLY_REFUNDED,
        PaymentStatus.REFUNDED,
        PaymentStatus.VOIDED,
    }
)


def is_ascii_digits(text: str) -> bool:
    # `str.isdigit` (and `int`) take any script's digits ("٤١١١"); the gateway and card schemes only ASCII.
    return text.isascii() and text.isdigit()


def is_luhn_valid(number: str) -> bool:
    if not is_ascii_digits(number):
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    """The brand name Authorize.Net reports as accountType, from the number's prefix."""
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"34", "37"}:
        return "AmericanExpress"
    prefix4 = int(number[:4]) if number[:4].isdigit() else 0
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= prefix4 <= 2720:
        return "MasterCard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "Discover"
    if number.startswith(("300", "301", "302", "303", "304", "305", "36", "38")):
        return "DinersClub"
    if 3528 <= prefix4 <= 3589:
        return "JCB"
    return "Unknown"


@dataclass(frozen=True, slots=True)
class CardDetails:
    """A raw card, valid by its own rules (Luhn, length, expiry, CVV form). Never logged or stored."""

    number: SecretStr
    expiration_year: int = field(repr=False)  # expiry is card data too: kept out of reprs
    expiration_month: int = field(repr=False)
    cvv: SecretStr | None = None

    @classmethod
    def parse(cls, *, number: str, expiration: str, cvv: str | None, today: date) -> "CardDetails":
        """Build a card from client input.

        Raises:
            InvalidCard: with a message that names the field, never its value.
        """
        digits = number.replace(" ", "").replace("-", "")
        if not 13 <= len(digits) <= 19 or not is_luhn_valid(digits):
            raise InvalidCard("card number is invalid")
        year, month = parse_expiration(expiration)
        if (year, month) < (today.year, today.month):
            raise InvalidCard("card has expired")
        if cvv is not None and (not is_ascii_digits(cvv) or len(cvv) not in (3, 4)):
            raise InvalidCard("card code must be 3 or 4 digits")
        return cls(SecretStr(digits), year, month, SecretStr(cvv) if cvv is not None else None)

    @property
    def last4(self) -> str:
        return self.number.get_secret_value()[-4:]

    @property
    def brand(self) -> str:
        return card_brand(self.number.get_secret_value())


def parse_expiration(text: str) -> tuple[int, int]:
    """Accept "YYYY-MM" (preferred), "MM/YY", "MMYY" and "MM/YYYY"; return (year, month)."""
    text = text.strip()
    if not text.isascii():
        raise InvalidCard("card expiration must be YYYY-MM")
    try:
        if len(text) == 7 and text[4] == "-":
            year, month = int(text[:4]), int(text[5:])
        elif len(text) == 5 and text[2] == "/":
            month, year = int(text[:2]), 2000 + int(text[3:])
        elif len(text) == 4 and text.isdigit():
            month, year = int(text[:2]), 2000 + int(text[2:])
        elif len(text) == 7 and text[2] == "/":
            month, year = int(text[:2]), int(text[3:])
        else:
            raise InvalidCard("card expiration must be YYYY-MM")
    except ValueError as exc:
        raise InvalidCard("card expiration must be YYYY-MM") from exc
    if not 1 <= month <= 12:
        raise InvalidCard("card expiration month must be 01 to 12")
    return year, month


@dataclass(frozen=True, slots=True)
class OpaqueData:
    """An Accept.js payment nonce: the card never touches our servers."""

    descriptor: str
    value: SecretStr


PaymentMethod = CardDetails | OpaqueData


@dataclass(frozen=True, slots=True)
class LineItem:
    item_id: str
    name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class BillTo:
    first_name: str
    last_name: str
    address: str
    city: str
    state: str
    zip: str
    country: str


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """Everything the gateway needs for one authCaptureTransaction."""

    amount: Money
    payment_method: PaymentMethod
    invoice_number: str  # stable per order, <= 20 chars
    ref_id: str  # unique per attempt, <= 20 chars
    line_items: tuple[LineItem, ...] = ()
    customer_id: str | None = None
    customer_email: str | None = None
    bill_to: BillTo | None = None
    description: str | None = None
    duplicate_window_s: int = 120
    tax_amount: Decimal | None = None
    shipping_amount: Decimal | None = None


class ChargeOutcomeKind(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    HELD_FOR_REVIEW = "held_for_review"
    FAILED = "failed"  # the gateway answered with an error: certainly not charged
    DUPLICATE = "duplicate"  # reason 11: a charge like this already went through; look it up
    CONFIGURATION_ERROR = "configuration_error"  # credentials or merchant set-up: not charged
    UNKNOWN = "unknown"  # sent, no answer read: may have been charged; reconcile, never re-send


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """What the gateway reported about one transaction; the `gateway` object of the payment resource."""

    transaction_id: str | None = None
    auth_code: str | None = None
    response_code: str | None = None
    reason_code: str | None = None
    message: str | None = None
    avs_result: str | None = None
    cvv_result: str | None = None
    account_number: str | None = None  # masked: XXXX1111
    account_type: str | None = None
    name: str = "authorize.net"

    def as_dict(self) -> dict[str, str | None]:
        """The fields in the order of the payment resource's `gateway` object (DESIGN §3)."""
        return {
            "name": self.name,
            "transaction_id": self.transaction_id,
            "auth_code": self.auth_code,
            "response_code": self.response_code,
            "reason_code": self.reason_code,
            "message": self.message,
            "avs_result": self.avs_result,
            "cvv_result": self.cvv_result,
            "account_number": self.account_number,
            "account_type": self.account_type,
        }


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    kind: ChargeOutcomeKind
    result: GatewayResult = field(default_factory=GatewayResult)
    soft_decline: bool = False  # a decline the customer may retry (e.g. try again later)
    original_transaction_id: str | None = None  # with DUPLICATE, when the gateway returned it

    @property
    def payment_status(self) -> PaymentStatus:
        match self.kind:
            case ChargeOutcomeKind.APPROVED:
                return PaymentStatus.APPROVED
            case ChargeOutcomeKind.DECLINED:
                return PaymentStatus.DECLINED
            case ChargeOutcomeKind.HELD_FOR_REVIEW:
                return PaymentStatus.HELD_FOR_REVIEW
            case ChargeOutcomeKind.FAILED | ChargeOutcomeKind.CONFIGURATION_ERROR:
                return PaymentStatus.FAILED
            case ChargeOutcomeKind.DUPLICATE | ChargeOutcomeKind.UNKNOWN:
                # A duplicate means money may have moved under an earlier attempt: the reconciler decides.
                return PaymentStatus.UNKNOWN


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    order_id: str
    customer_id: str
    status: PaymentStatus
    amount: Money
    invoice_number: str
    ref_id: str
    card_last4: str | None
    card_brand: str | None
    created_at: datetime
    updated_at: datetime
    version: int = 1
    gateway: GatewayResult | None = None
    sent_at: datetime | None = None
    captured_amount: Decimal = Decimal(0)
    refunded_amount: Decimal = Decimal(0)
