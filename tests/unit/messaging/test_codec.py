import dataclasses
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from payment_service.domain.errors import InvalidEvent
from payment_service.domain.events import EVENT_SOURCE, EventStream, OutboundEvent, PaymentRecorded
from payment_service.domain.payments import PaymentStatus
from payment_service.messaging.codec import (
    INVALID_SCHEMA,
    UNDECODABLE,
    UNSUPPORTED_TYPE,
    CloudEvent,
    decode_event,
    decode_payment,
    encode_event,
    traceparent_for,
)

OCCURRED_AT = datetime(2026, 3, 1, 12, 30, 5, 123000, tzinfo=UTC)


def make_payment(*, status: PaymentStatus = PaymentStatus.APPROVED, version: int = 1) -> PaymentRecorded:
    return PaymentRecorded(
        id="pay_1",
        order_id="1001",
        customer_id="42",
        status=status,
        amount="59.97",
        currency="USD",
        created_at=OCCURRED_AT,
        updated_at=OCCURRED_AT,
        version=version,
    )


def make_event(payment: PaymentRecorded | None = None, *, event_type: str | None = None) -> OutboundEvent:
    payment = payment or make_payment()
    return OutboundEvent(
        event_id=str(uuid.uuid4()),
        stream=EventStream.PAYMENTS,
        event_type=event_type or f"payment.{payment.status.value}",
        subject=f"payments/{payment.id}",
        key=payment.order_id,
        data=payment.model_dump_json().encode(),
        occurred_at=OCCURRED_AT,
    )


def decode(event: OutboundEvent, **header_changes: bytes | None) -> CloudEvent:
    encoded = encode_event(event)
    headers = [(name, header_changes.get(name.replace("-", "_"), value)) for name, value in encoded.headers]
    kept = [(name, value) for name, value in headers if value is not None]
    return decode_event(key=encoded.key, value=encoded.value, headers=kept)


class TestEncodeEvent:
    def test_binary_mode_puts_attributes_in_headers_and_data_in_the_value(self) -> None:
        event = make_event()

        encoded = encode_event(event)

        headers = dict(encoded.headers)
        assert headers == {
            "ce_specversion": b"1.0",
            "ce_id": event.event_id.encode(),
            "ce_source": EVENT_SOURCE.encode(),
            "ce_type": b"payment.approved",
            "ce_time": b"2026-03-01T12:30:05.123000Z",
            "ce_subject": b"payments/pay_1",
            "content-type": b"application/json",
            "traceparent": traceparent_for(event.event_id).encode(),
        }
        assert encoded.key == b"1001"
        assert orjson.loads(encoded.value)["id"] == "pay_1"

    def test_traceparent_is_w3c_shaped_and_stable_per_event(self) -> None:
        event_id = str(uuid.uuid4())

        first, second = traceparent_for(event_id), traceparent_for(event_id)

        version, trace_id, span_id, flags = first.split("-")
        assert first == second
        assert (version, flags) == ("00", "01")
        assert trace_id == uuid.UUID(event_id).hex
        assert len(span_id) == 16
        assert int(span_id, 16) != 0


class TestDecodeEvent:
    def test_round_trip_keeps_every_attribute(self) -> None:
        event = make_event()

        decoded = decode(event)

        assert decoded == CloudEvent(
            event_id=event.event_id,
            source=EVENT_SOURCE,
            event_type="payment.approved",
            time=OCCURRED_AT,
            subject="payments/pay_1",
            key="1001",
            data=event.data,
            traceparent=traceparent_for(event.event_id),
        )

    def test_content_type_parameters_are_accepted(self) -> None:
        decoded = decode(make_event(), content_type=b"application/json; charset=utf-8")

        assert decoded.event_type == "payment.approved"

    @pytest.mark.parametrize(
        "changes",
        [
            {"ce_specversion": b"0.3"},
            {"ce_id": None},
            {"ce_type": None},
            {"ce_source": b""},
            {"ce_time": b"yesterday"},
            {"ce_time": b"2026-03-01T12:30:05"},
            {"content_type": b"text/plain"},
            {"content_type": b"application/cloudevents+json"},
            {"ce_subject": b"\xff\xfe"},
        ],
    )
    def test_a_malformed_envelope_is_undecodable(self, changes: dict[str, bytes | None]) -> None:
        with pytest.raises(InvalidEvent) as raised:
            decode(make_event(), **changes)

        assert raised.value.reason == UNDECODABLE

    def test_a_value_that_is_not_json_is_undecodable(self) -> None:
        encoded = encode_event(make_event())

        with pytest.raises(InvalidEvent) as raised:
            decode_event(key=encoded.key, value=b"{not json", headers=encoded.headers)

        assert raised.value.reason == UNDECODABLE

    def test_a_record_without_value_is_undecodable(self) -> None:
        encoded = encode_event(make_event())

        with pytest.raises(InvalidEvent) as raised:
            decode_event(key=encoded.key, value=None, headers=encoded.headers)

        assert raised.value.reason == UNDECODABLE


class TestDecodePayment:
    def test_valid_payment_data_is_returned_as_the_model(self) -> None:
        payment = make_payment(status=PaymentStatus.DECLINED, version=3)

        assert decode_payment(decode(make_event(payment))) == payment

    def test_data_missing_a_field_is_off_schema_and_names_the_field(self) -> None:
        event = make_event()
        data = orjson.loads(event.data)
        del data["version"]
        broken = dataclasses.replace(event, data=orjson.dumps(data))

        with pytest.raises(InvalidEvent) as raised:
            decode_payment(decode(broken))

        assert raised.value.reason == INVALID_SCHEMA
        assert "version" in raised.value.message

    def test_a_type_that_contradicts_the_status_is_off_schema(self) -> None:
        event = make_event(make_payment(status=PaymentStatus.APPROVED), event_type="payment.declined")

        with pytest.raises(InvalidEvent) as raised:
            decode_payment(decode(event))

        assert raised.value.reason == INVALID_SCHEMA

    def test_a_non_payment_type_is_unsupported(self) -> None:
        event = make_event(event_type="order.paid")

        with pytest.raises(InvalidEvent) as raised:
            decode_payment(decode(event))

        assert raised.value.reason == UNSUPPORTED_TYPE
