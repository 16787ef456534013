"""Ids the service gives its own records: a prefix and 16 time-ordered Crockford base32 characters."""

import os
from datetime import datetime
from typing import Final

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def time_ordered_id(prefix: str, now: datetime) -> str:
    """`prefix` and 16 Crockford base32 characters: 48 bits of milliseconds, then 30 random bits.

    Ids sort by creation time, and the part after the prefix is a valid Authorize.Net refId (at most 20).
    """
    value = (int(now.timestamp() * 1000) << 30) | int.from_bytes(os.urandom(4), "big") >> 2
    return prefix + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(75, -1, -5))
