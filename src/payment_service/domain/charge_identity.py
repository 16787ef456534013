"""How an attempt is recognised in the gateway's records, from fields the transaction details always echo.

The pay flow writes the attempt's own id (its refId) into `order.description`, which the gateway stores
with the transaction and `getTransactionDetails` returns; `transrefId` (the refId echoed) is only extra
evidence, as no public sample of the live API shows it filled. `order.description` is not among the
fields of the gateway's duplicate check, so a new attempt at the same order, card and amount is still
caught as a duplicate (poNumber would defeat that).

A row is a *candidate* when nothing it states contradicts the attempt: a charge of its invoice number,
customer, amount (on whichever of requested, auth and settle amount is present) and card. A candidate
is *ours* when an echoed field names the attempt, *another attempt's* when one names another, and
*unconfirmed* when none names any: such a match is left to a person, never read as "not charged".
"""

from enum import StrEnum
from typing import Final

from payment_service.domain.payments import Payment
from payment_service.domain.transactions import TransactionDetails, TransactionKind

MAX_CUSTOMER_ID: Final = 20  # the gateway keeps at most this much of `customer.id`
_CHARGE_KINDS: Final = frozenset({TransactionKind.CHARGE, TransactionKind.AUTHORIZATION})
_MARKER: Final = "Payment"


class Identity(StrEnum):
    OURS = "ours"  # an echoed field names this attempt
    OTHER_ATTEMPT = "other_attempt"  # an echoed field names another attempt
    UNCONFIRMED = "unconfirmed"  # nothing echoed names any attempt


def describe_attempt(ref_id: str, order_id: str) -> str:
    """The `order.description` of an attempt: its id first, so clipping to the gateway's 255 keeps it."""
    return f"{_MARKER} {ref_id} for order {order_id}"


def described_ref_id(description: str | None) -> str | None:
    """The attempt id `describe_attempt` wrote into `description`, or None."""
    if not description:
        return None
    words = description.split(maxsplit=2)
    if len(words) >= 2 and words[0] == _MARKER:
        return words[1]
    return None


def is_candidate(payment: Payment, details: TransactionDetails) -> bool:
    """Whether nothing in `details` contradicts its being `payment`'s charge."""
    if details.kind not in _CHARGE_KINDS:
        return False
    if details.invoice_number is not None and details.invoice_number != payment.invoice_number:
        return False
    if details.customer_id is not None and details.customer_id != payment.customer_id.strip()[:MAX_CUSTOMER_ID]:
        return False
    amounts = details.amounts
    if amounts and payment.amount.amount not in amounts:
        return False
    return payment.card_last4 is None or details.card_last4 in (None, payment.card_last4)


def echoed_ref_ids(details: TransactionDetails) -> frozenset[str]:
    """The attempt ids `details` echoes: in `order.description`, and as `transrefId` when the gateway fills it."""
    return frozenset(ref for ref in (details.ref_id, described_ref_id(details.description)) if ref)


def identify(payment: Payment, details: TransactionDetails) -> Identity:
    """Whose charge `details` is, by the attempt ids it echoes (`order.description`, `transrefId`)."""
    echoed = echoed_ref_ids(details)
    if payment.ref_id in echoed:
        return Identity.OURS
    return Identity.OTHER_ATTEMPT if echoed else Identity.UNCONFIRMED
