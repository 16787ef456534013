"""Money as exact decimal strings on the wire and integer cents in the database.

Every amount this service handles has two decimal places (the payment service quantises to cents),
so cents are stored as integers: exact, portable across SQLite and PostgreSQL, and cheap to sum.
"""

import re
from decimal import Decimal

CENT = Decimal("0.01")
# A non-negative amount with at most two decimal places and no exponent, e.g. "19.99", "5", "0.5".
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,12})(\.[0-9]{1,2})?")


def parse_amount(text: str) -> Decimal:
    """Parse a decimal string with at most two decimal places.

    Raises:
        ValueError: when `text` is not such a string (floats, exponents, signs and extra places
            are rejected rather than rounded).
    """
    if not _AMOUNT.fullmatch(text):
        msg = 'must be a non-negative decimal string with at most two decimal places, e.g. "19.99"'
        raise ValueError(msg)
    return Decimal(text).quantize(CENT)


def to_cents(amount: Decimal) -> int:
    return int(amount.quantize(CENT).scaleb(2))


def format_cents(cents: int) -> str:
    return format(Decimal(cents).scaleb(-2), "f")
