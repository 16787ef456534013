import hashlib
import hmac

import orjson
import pytest

from payment_service.domain.errors import InvalidRequest, WebhookSignatureInvalid
from payment_service.domain.notifications import NotificationEvent
from payment_service.gateway.webhooks import parse_notification, verify_signature

KEY = "A1" * 64
BODY = orjson.dumps(
    {
        "notificationId": "d0e8e7fe-c3e7-4add-a480-27bc5ce28836",
        "eventType": "net.authorize.payment.fraud.approved",
        "eventDate": "2026-12-06T02:00:00.0000000Z",
        "webhookId": "webhook",
        "payload": {"responseCode": 1, "authAmount": 59.97, "entityName": "transaction", "id": "80000000001"},
    }
)


def signature(body: bytes, key: str = KEY) -> str:
    return "sha512=" + hmac.new(key.encode(), body, hashlib.sha512).hexdigest().upper()


class TestVerifySignature:
    def test_the_gateways_upper_case_signature_of_the_exact_body_is_accepted(self) -> None:
        verify_signature(BODY, signature(BODY), signature_key=KEY)

    def test_lower_case_hex_is_accepted_too(self) -> None:
        verify_signature(BODY, signature(BODY).lower(), signature_key=KEY)

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "sha512=",
            "sha256=" + hashlib.sha256(BODY).hexdigest(),
            signature(BODY + b" "),
            signature(BODY, "B2" * 64),
            "sha512=ZZZ",
            "sha512=é" * 3,
        ],
        ids=["missing", "empty", "no-digest", "other-algorithm", "other-body", "other-key", "not-hex", "non-ascii"],
    )
    def test_anything_else_is_refused(self, header: str | None) -> None:
        with pytest.raises(WebhookSignatureInvalid):
            verify_signature(BODY, header, signature_key=KEY)


class TestParseNotification:
    def test_the_routing_fields_are_read_and_the_rest_ignored(self) -> None:
        notification = parse_notification(BODY)

        assert notification.notification_id == "d0e8e7fe-c3e7-4add-a480-27bc5ce28836"
        assert notification.event is NotificationEvent.FRAUD_APPROVED
        assert notification.transaction_id == "80000000001"

    def test_an_unknown_event_type_is_kept_as_sent(self) -> None:
        body = orjson.dumps({"notificationId": "n-1", "eventType": "net.authorize.customer.created", "payload": {}})

        notification = parse_notification(body)

        assert notification.event is None
        assert notification.event_type == "net.authorize.customer.created"

    def test_a_payload_about_another_entity_names_no_transaction(self) -> None:
        body = orjson.dumps(
            {"notificationId": "n-1", "eventType": "e.x", "payload": {"entityName": "customerProfile", "id": "12"}}
        )

        assert parse_notification(body).transaction_id is None

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"[]",
            b'{"eventType": "e"}',
            b'{"notificationId": "../../x", "eventType": "e"}',
            b'{"notificationId": "n", "eventType": "e", "payload": {"id": "1 OR 1=1"}}',
        ],
        ids=["not-json", "not-an-object", "no-id", "path-like-id", "non-numeric-transaction"],
    )
    def test_a_body_that_is_no_notification_is_invalid(self, body: bytes) -> None:
        with pytest.raises(InvalidRequest):
            parse_notification(body)
