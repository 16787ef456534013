"""Money: a `Decimal` amount with an ISO 4217 currency, quantised to the currency's minor unit."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Final

from pydantic import Field

# Every decimal read from outside (a request, a db-service or gateway reply) is bounded before any
# arithmetic: `Decimal("1E+1000000")` is a finite number whose `quantize` or `normalize` overflows.
# Twelve whole digits and six places hold any real amount, unit price or tax in any currency.
MAX_AMOUNT_DIGITS: Final = 18
MAX_AMOUNT_PLACES: Final = 6
BoundedDecimal = Annotated[
    Decimal, Field(max_digits=MAX_AMOUNT_DIGITS, decimal_places=MAX_AMOUNT_PLACES, allow_inf_nan=False)
]

# Currencies whose minor unit is not two digits (ISO 4217); everything else has cents.
_MINOR_UNIT_DIGITS = {
    **dict.fromkeys(
        (
            "BIF",
            "CLP",
            "DJF",
            "GNF",
            "ISK",
            "JPY",
            "KMF",
            "KRW",
            "PYG",
            "RWF",
            "UGX",
            "VND",
            "VUV",
            "XAF",
            "XOF",
            "XPF",
        ),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def minor_unit_digits(currency: str) -> int:
    return _MINOR_UNIT_DIGITS.get(currency, 2)


def fits_minor_unit(amount: Decimal, currency: str) -> bool:
    """Whether `amount` has no more decimals than `currency`'s minor unit (59.97 fits USD, not JPY)."""
    if not amount.is_finite():
        return False
    exponent = Decimal(1).scaleb(-minor_unit_digits(currency))
    try:
        return amount.quantize(exponent) == amount
    except InvalidOperation:  # more digits than the context holds
        return False


def quantize(amount: Decimal, currency: str) -> Decimal:
    exponent = Decimal(1).scaleb(-minor_unit_digits(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def parse_amount(text: str) -> Decimal:
    """Parse a decimal string such as "59.97".

    Raises ValueError for anything that is not a finite number within `BoundedDecimal`'s bounds.
    """
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    return ensure_bounded(value)


def ensure_bounded(value: Decimal) -> Decimal:
    """`value` if within `BoundedDecimal`'s bounds (trailing zeros not counted), else ValueError.

    Reads only the digits and exponent: no arithmetic on `value`, which may be out of any context's range.
    """
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # "n", "N" or "F": NaN or infinity
        raise ValueError("not a finite amount")
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    places = max(0, -exponent - trailing_zeros)
    whole_digits = max(0, value.adjusted() + 1) if any(digits) else 0
    if places > MAX_AMOUNT_PLACES or whole_digits > MAX_AMOUNT_DIGITS - MAX_AMOUNT_PLACES:
        raise ValueError("amount out of bounds")
    return value


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str = "USD"

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):  # a float would lose cents; refuse it outright
            raise TypeError("Money amounts are Decimal, never float")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"not an ISO 4217 currency code: {self.currency!r}")
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))

    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str = "USD") -> "Money":
        value = parse_amount(amount) if isinstance(amount, str) else Decimal(amount)
        return cls(value, currency)

    def __add__(self, other: "Money") -> "Money":
        self._require_same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._require_same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, quantity: int) -> "Money":
        return Money(self.amount * quantity, self.currency)

    def is_positive(self) -> bool:
        return self.amount > 0

    def _require_same_currency(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} and {other.currency}")

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
