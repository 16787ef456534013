"""The duplicate-transaction window (NOTES §8).

A submission is a duplicate when an earlier one from the same merchant carried the same values of
every field in `DuplicateKey` within the window (default 120 s, 0 disables, capped at 28800 s).
`refId` is not part of the key. The original's details are returned only when the request set
duplicateWindow explicitly.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

DEFAULT_WINDOW_S: Final = 120
MAX_WINDOW_S: Final = 28800

# login, card fingerprint, expiration, transaction type, poNumber, amount, invoiceNumber,
# customer id, billTo names and address fields, duplicateWindow as sent.
DuplicateKey = tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class OriginalSubmission:
    trans_id: str
    submitted_at: datetime
    window_s: int
    response_code: str
    auth_code: str
    avs_result: str
    cvv_result: str
    account_number: str
    account_type: str


class DuplicateWindow:
    def __init__(self) -> None:
        self._entries: dict[DuplicateKey, OriginalSubmission] = {}

    def find(self, key: DuplicateKey, now: datetime) -> OriginalSubmission | None:
        original = self._entries.get(key)
        if original is None:
            return None
        if original.window_s <= 0 or now - original.submitted_at >= timedelta(seconds=original.window_s):
            return None
        return original

    def remember(self, key: DuplicateKey, original: OriginalSubmission) -> None:
        if original.window_s <= 0:
            return
        if len(self._entries) > 10000:
            self._prune(original.submitted_at)
        self._entries[key] = original

    def _prune(self, now: datetime) -> None:
        expired = [
            key for key, entry in self._entries.items() if now - entry.submitted_at >= timedelta(seconds=entry.window_s)
        ]
        for key in expired:
            del self._entries[key]
