"""Authorize.Net webhook notifications: the signature check and the payload's routing fields.

`X-ANET-Signature: sha512=<HEX>` is the HMAC-SHA512 of the exact body bytes, keyed with the Signature
Key's text (not hex-decoded); the gateway sends the hex upper-case, so it is compared case-blind.
"""

import hashlib
import hmac
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payment_service.domain.errors import InvalidRequest, WebhookSignatureInvalid
from payment_service.domain.notifications import GatewayNotification

SIGNATURE_HEADER: Final = "X-ANET-Signature"
_PREFIX: Final = "sha512="


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    entity_name: str | None = Field(default=None, alias="entityName", max_length=64)
    id: str | None = Field(default=None, max_length=32, pattern=r"^[0-9]+$")


class _Notification(BaseModel):
    model_config = ConfigDict(extra="ignore")

    notification_id: str = Field(alias="notificationId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
    event_type: str = Field(alias="eventType", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9.]+$")
    payload: _Payload = _Payload()


def verify_signature(body: bytes, header: str | None, *, signature_key: str) -> None:
    """Check the notification's signature in constant time.

    Raises:
        WebhookSignatureInvalid: the header is missing, malformed or does not match the body.
    """
    if header is None or not header.lower().startswith(_PREFIX):
        raise WebhookSignatureInvalid("a valid X-ANET-Signature header is required")
    expected = hmac.new(signature_key.encode(), body, hashlib.sha512).hexdigest()
    received = header[len(_PREFIX) :].strip().lower()
    if not hmac.compare_digest(expected.encode(), received.encode("ascii", errors="replace")):
        raise WebhookSignatureInvalid("a valid X-ANET-Signature header is required")


def parse_notification(body: bytes) -> GatewayNotification:
    """The routing fields of a (verified) notification body.

    Raises:
        InvalidRequest: the body is not a notification.
    """
    try:
        parsed = _Notification.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidRequest("the body is not an Authorize.Net notification") from exc
    is_transaction = parsed.payload.entity_name in (None, "transaction")
    return GatewayNotification(
        notification_id=parsed.notification_id,
        event_type=parsed.event_type,
        transaction_id=parsed.payload.id if is_transaction else None,
    )
