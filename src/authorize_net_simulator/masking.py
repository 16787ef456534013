"""Masking of card data and credentials in raw request bodies kept for the `/_sim/requests` surface.

Card numbers keep their last four digits (`XXXX1111`); card codes, expiry dates, transaction keys,
passwords and bank numbers become `XXXX`. Any other run of 13-19 digits is masked too, as a net.
"""

import re
from typing import Final

_FIELDS: Final = "cardNumber|cardCode|expirationDate|transactionKey|password|partnerTransactionKey|accountNumber|routingNumber|track1|track2"
_JSON_FIELD: Final = re.compile(rb'("(' + _FIELDS.encode() + rb')"\s*:\s*)("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*)')
_XML_FIELD: Final = re.compile(rb"(<(?:[\w.-]+:)?(" + _FIELDS.encode() + rb")(?:\s[^>]*)?>)([^<]*)(</)")
_LONG_DIGITS: Final = re.compile(rb"(?<![0-9])[0-9]{9,15}([0-9]{4})(?![0-9])")


def _masked_value(field: bytes, raw: bytes) -> bytes:
    if field == b"cardNumber":
        digits = raw.strip(b'"')
        return b"XXXX" + digits[-4:] if len(digits) >= 4 else b"XXXX"
    return b"XXXX"


def mask_body(body: bytes) -> str:
    """The body with sensitive values masked, decoded leniently for display."""
    masked = _JSON_FIELD.sub(lambda m: m.group(1) + b'"' + _masked_value(m.group(2), m.group(3)) + b'"', body)
    masked = _XML_FIELD.sub(lambda m: m.group(1) + _masked_value(m.group(2), m.group(3)) + m.group(4), masked)
    masked = _LONG_DIGITS.sub(rb"XXXX\1", masked)
    return masked.decode("utf-8", errors="replace")
