"""Money as exact decimal strings on the wire and integers in the database.

Products, order lines, shipping and tax have at most two decimal places (a product has no currency),
stored as integer cents. A payment's amounts are in its own currency's minor unit (ISO 4217: none for
JPY, three for KWD, two for most), stored as integers of that unit: exact, portable across SQLite and
PostgreSQL, and cheap to sum. More places than a currency has are refused, never rounded.
"""

import re
from decimal import Decimal
from typing import Final

CENT = Decimal("0.01")
MAX_MINOR_UNIT_DIGITS: Final = 3
# A non-negative amount with at most three decimal places and no exponent, e.g. "19.99", "5", "1.240".
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,12})(\.[0-9]{1,3})?")

# ISO 4217 currencies whose minor unit is not two digits; every other currency has cents.
_MINOR_UNIT_DIGITS: Final = {
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
    """The decimal places of `currency`'s minor unit: 0 for JPY, 3 for KWD, 2 otherwise."""
    return _MINOR_UNIT_DIGITS.get(currency, 2)


def parse_exact_amount(text: str) -> Decimal:
    """Parse a decimal string with at most three decimal places, keeping the places it has.

    Raises:
        ValueError: when `text` is not such a string (floats, exponents, signs and extra places
            are rejected rather than rounded).
    """
    if not _AMOUNT.fullmatch(text):
        msg = 'must be a non-negative decimal string with at most three decimal places, e.g. "19.99"'
        raise ValueError(msg)
    return Decimal(text)


def parse_amount(text: str) -> Decimal:
    """Parse a decimal string with at most two decimal places, as cents.

    Raises:
        ValueError: as `parse_exact_amount`, and for a third decimal place.
    """
    amount = parse_exact_amount(text)
    if amount != amount.quantize(CENT):
        msg = 'must be a non-negative decimal string with at most two decimal places, e.g. "19.99"'
        raise ValueError(msg)
    return amount.quantize(CENT)


def check_minor_unit(amount: Decimal, currency: str) -> Decimal:
    """`amount` unchanged when `currency`'s minor unit holds it exactly.

    Raises:
        ValueError: more decimal places than the currency has (JPY 0.50, KWD 0.6175).
    """
    digits = minor_unit_digits(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-digits)):
        msg = f"has more decimal places than {currency} has ({digits})"
        raise ValueError(msg)
    return amount


def to_minor_units(amount: Decimal, currency: str) -> int:
    """`amount` as an integer of `currency`'s minor unit. Raises ValueError as `check_minor_unit`."""
    return int(check_minor_unit(amount, currency).scaleb(minor_unit_digits(currency)))


def format_minor_units(units: int, currency: str) -> str:
    """An integer of `currency`'s minor unit as a decimal string with the currency's places ("1.240", "5000")."""
    digits = minor_unit_digits(currency)
    return format(Decimal(units).scaleb(-digits).quantize(Decimal(1).scaleb(-digits)), "f")


def to_cents(amount: Decimal) -> int:
    return int(amount.quantize(CENT).scaleb(2))


def format_cents(cents: int) -> str:
    return format(Decimal(cents).scaleb(-2), "f")
