"""Notifications the gateway sends about its transactions (Authorize.Net webhooks), as we act on them.

Only the routing facts are read from a notification: which event, about which transaction. What the
transaction now is comes from the gateway's own record (`getTransactionDetails`), never from the payload.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class NotificationEvent(StrEnum):
    """The event types the service acts on; any other type is stored and ignored."""

    FRAUD_APPROVED = "net.authorize.payment.fraud.approved"
    FRAUD_DECLINED = "net.authorize.payment.fraud.declined"
    AUTH_CAPTURE_CREATED = "net.authorize.payment.authcapture.created"
    REFUND_CREATED = "net.authorize.payment.refund.created"
    VOID_CREATED = "net.authorize.payment.void.created"


# Events about money given back: recorded as refunds of the payment the transaction refers to.
REFUND_EVENTS: Final = frozenset({NotificationEvent.REFUND_CREATED, NotificationEvent.VOID_CREATED})


@dataclass(frozen=True, slots=True)
class GatewayNotification:
    notification_id: str
    event_type: str  # the gateway's own value, kept even when we do not act on it
    transaction_id: str | None  # `payload.id` when the notification is about a transaction

    @property
    def event(self) -> NotificationEvent | None:
        try:
            return NotificationEvent(self.event_type)
        except ValueError:
            return None


class NotificationOutcome(StrEnum):
    """What processing a stored notification did."""

    APPLIED = "applied"  # a payment changed as the gateway's record says
    UNCHANGED = "unchanged"  # the payment already shows what the gateway says (or another path got there first)
    NOT_OURS = "not_ours"  # no payment of ours has that transaction
    IGNORED = "ignored"  # an event type we do not act on
