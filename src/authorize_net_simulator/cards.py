"""Card rules and the sandbox's trigger tables (NOTES §11): Luhn and length, brand, expiry, AVS and CVV.

Pure functions; nothing here stores or prints a card number.
"""

import re
from datetime import datetime
from typing import Final

TEST_CARDS: Final = frozenset(
    {
        "4111111111111111",
        "4007000000027",
        "4012888818888",
        "5424000000000015",
        "2223000010309703",
        "2223000010309711",
        "370000000000002",
        "6011000000000012",
        "3088000000000017",
        "38000000000006",
        "6221499053360818",
        "6262320002000067",
        "6284480000000008",
    }
)
# Legacy "Test Environment Account Error Generation": this Visa number with an amount of N dollars
# answers response reason code N.
LEGACY_ERROR_CARD: Final = "4222222222222"

DECLINE_ZIP: Final = "46282"
# billTo.zip -> AVS result code; the set names brands that never return that code.
AVS_ZIP_TRIGGERS: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "46201": ("A", frozenset()),
    "46203": ("E", frozenset()),
    "46204": ("G", frozenset({"AmericanExpress"})),
    "46205": ("N", frozenset()),
    "46206": ("P", frozenset()),
    "46207": ("R", frozenset()),
    "46208": ("S", frozenset()),
    "46209": ("U", frozenset()),
    "46211": ("W", frozenset({"AmericanExpress"})),
    "46214": ("X", frozenset({"Visa", "AmericanExpress"})),
    "46217": ("Z", frozenset()),
}
CVV_TRIGGERS: Final = {"900": "M", "901": "N", "902": "S", "903": "U", "904": "P"}
# Simulator-only fraud-filter triggers (the sandbox has none documented): billTo.zip -> reason code.
HOLD_ZIP_TRIGGERS: Final = {"46252": 252, "46253": 253}

_DIGITS = re.compile(r"[0-9]+")
_EXPIRY_FORMATS: Final = (
    (re.compile(r"(\d{4})-(\d{1,2})"), "ym"),
    (re.compile(r"(\d{2})/?(\d{2})"), "my2"),
    (re.compile(r"(\d{1,2})/(\d{4})"), "my4"),
    (re.compile(r"(\d{2})(\d{4})"), "my4"),
)


def passes_luhn(number: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def is_valid_card_number(number: str) -> bool:
    return 13 <= len(number) <= 16 and _DIGITS.fullmatch(number) is not None and passes_luhn(number)


def card_brand(number: str) -> str:
    """The `accountType` the gateway reports for a card number."""
    two = int(number[:2]) if len(number) >= 2 and number[:2].isdigit() else 0
    four = int(number[:4]) if len(number) >= 4 and number[:4].isdigit() else 0
    if number.startswith("4"):
        return "Visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "MasterCard"
    if two in (34, 37):
        return "AmericanExpress"
    if two in (36, 38) or 300 <= four // 10 <= 305:
        return "DinersClub"
    if 3528 <= four <= 3589 or four == 3088:
        return "JCB"
    return "Discover"


def parse_expiry(text: str) -> tuple[int, int] | None:
    """Year and month of an expiration date in one of the forms the gateway accepts, else None."""
    for pattern, kind in _EXPIRY_FORMATS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        first, second = int(match.group(1)), int(match.group(2))
        year, month = (first, second) if kind == "ym" else (second, first)
        if kind == "my2":
            year += 2000
        if 1 <= month <= 12:
            return year, month
        return None
    return None


def is_expired(year: int, month: int, now: datetime) -> bool:
    return (year, month) < (now.year, now.month)


def avs_result(zip_code: str | None, brand: str, *, address_sent: bool) -> str:
    """AVS result code: the sandbox ZIP triggers, else Y (match) or B (no address sent)."""
    if zip_code is not None:
        trigger = AVS_ZIP_TRIGGERS.get(zip_code)
        if trigger is not None and brand not in trigger[1]:
            return trigger[0]
    return "Y" if address_sent else "B"


def cvv_result(card_code: str | None) -> str:
    """Card code result: the sandbox 900-904 triggers, M for any other code, blank when none was sent."""
    if not card_code:
        return ""
    return CVV_TRIGGERS.get(card_code, "M")


def is_valid_card_code(card_code: str, brand: str) -> bool:
    wanted = 4 if brand == "AmericanExpress" else 3
    return len(card_code) == wanted and card_code.isdigit()
