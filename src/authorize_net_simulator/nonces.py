"""Accept.js-style payment nonces: a card exchanged for opaque data, usable once within the TTL."""

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

NONCE_DESCRIPTOR: Final = "COMMON.ACCEPT.INAPP.PAYMENT"


@dataclass(slots=True)
class NonceCard:
    """The card behind a nonce. Held in memory only; its repr shows nothing but the last four digits."""

    card_number: str = field(repr=False)
    expiration: str = field(repr=False)
    card_code: str | None = field(repr=False)
    minted_at: datetime
    spent: bool = False

    @property
    def last_four(self) -> str:
        return self.card_number[-4:]


class NonceStore:
    def __init__(self, *, ttl_s: int) -> None:
        self._ttl = timedelta(seconds=ttl_s)
        self._cards: dict[str, NonceCard] = {}

    def mint(self, *, card_number: str, expiration: str, card_code: str | None, now: datetime) -> str:
        self._prune(now)
        # Real nonces are long opaque base64 strings; the shape is kept, the content is random.
        value = "eyJj" + secrets.token_urlsafe(96)
        self._cards[value] = NonceCard(card_number, expiration, card_code, now)
        return value

    def look_up(self, value: str, now: datetime) -> NonceCard | None:
        """The card behind a live nonce (spent or not), or None when unknown or expired."""
        card = self._cards.get(value)
        if card is None or self.is_expired(card, now):
            return None
        return card

    def is_expired(self, card: NonceCard, now: datetime) -> bool:
        return now - card.minted_at > self._ttl

    def find_expired(self, value: str, now: datetime) -> bool:
        """Whether `value` is a nonce this store minted that has expired (E00115, not E00114)."""
        card = self._cards.get(value)
        return card is not None and self.is_expired(card, now)

    def _prune(self, now: datetime) -> None:
        if len(self._cards) < 1000:
            return
        for value in [v for v, card in self._cards.items() if now - card.minted_at > self._ttl]:
            del self._cards[value]
