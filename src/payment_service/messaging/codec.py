"""CloudEvents 1.0 over Kafka in binary content mode: our events to records and back.

The record value is the event's JSON `data`; each attribute is a header (`ce_specversion`, `ce_id`,
`ce_source`, `ce_type`, `ce_time`, `ce_subject`), `datacontenttype` travels as `content-type`, and
a W3C `traceparent` rides along. The record key is the order id, so one order's events keep their
order on a topic. Decoding validates the envelope and, for payment events, the data's schema;
what cannot be processed raises `InvalidEvent` with a stable `reason`. Structured mode
(`content-type: application/cloudevents+json`) is not produced here and is rejected on read.
Nothing here talks to Kafka: `client.py` moves the bytes.
"""

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from pydantic import ValidationError

from payment_service.domain.errors import InvalidEvent
from payment_service.domain.events import EVENT_SOURCE, OutboundEvent, PaymentRecorded, payment_event_type

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
PAYMENT_TYPE_PREFIX = "payment."

# Reasons carried by `InvalidEvent` and written to `dlq-reason`.
UNDECODABLE = "undecodable"
INVALID_SCHEMA = "invalid_schema"
UNSUPPORTED_TYPE = "unsupported_type"

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event as a Kafka record: what the producer sends."""

    key: bytes
    value: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A decoded event: the envelope's attributes, and the data still as JSON bytes."""

    event_id: str
    source: str
    event_type: str
    time: datetime | None
    subject: str | None
    key: str | None
    data: bytes
    traceparent: str | None = None


def traceparent_for(event_id: str) -> str:
    """A W3C traceparent derived from the event id, so a re-published event carries the same one."""
    digest = hashlib.sha256(event_id.encode()).hexdigest()
    try:
        trace_id = uuid.UUID(event_id).hex
    except ValueError:
        trace_id = digest[16:48]
    return f"00-{trace_id}-{digest[:16]}-01"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, as CloudEvents `time` wants."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_event(event: OutboundEvent, *, traceparent: str | None = None) -> EncodedEvent:
    headers: Headers = (
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", event.event_id.encode()),
        ("ce_source", EVENT_SOURCE.encode()),
        ("ce_type", event.event_type.encode()),
        ("ce_time", format_time(event.occurred_at).encode()),
        ("ce_subject", event.subject.encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("traceparent", (traceparent or traceparent_for(event.event_id)).encode()),
    )
    return EncodedEvent(key=event.key.encode(), value=event.data, headers=headers)


def decode_event(*, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> CloudEvent:
    """Read a binary-mode CloudEvent with JSON data.

    Raises:
        InvalidEvent: reason `undecodable` when the envelope is missing or malformed, the content
            type is not JSON, or the value is not JSON.
    """
    attributes = _header_map(headers)
    content_type = attributes.get("content-type", "")
    if content_type.lower().startswith("application/cloudevents"):
        raise InvalidEvent(UNDECODABLE, "structured-mode CloudEvents are not accepted")
    if content_type.split(";")[0].strip().lower() != CONTENT_TYPE:
        raise InvalidEvent(UNDECODABLE, f"content-type must be {CONTENT_TYPE}, got {content_type!r}")
    if attributes.get("ce_specversion") != SPEC_VERSION:
        raise InvalidEvent(UNDECODABLE, f"ce_specversion must be {SPEC_VERSION}")
    for name in ("ce_id", "ce_source", "ce_type"):
        if not attributes.get(name):
            raise InvalidEvent(UNDECODABLE, f"header {name} is missing")
    if value is None:
        raise InvalidEvent(UNDECODABLE, "the record has no value")
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(UNDECODABLE, "the value is not JSON") from exc
    try:
        decoded_key = key.decode() if key is not None else None
    except UnicodeDecodeError as exc:
        raise InvalidEvent(UNDECODABLE, "the record key is not UTF-8") from exc
    return CloudEvent(
        event_id=attributes["ce_id"],
        source=attributes["ce_source"],
        event_type=attributes["ce_type"],
        time=_parse_time(attributes.get("ce_time")),
        subject=attributes.get("ce_subject"),
        key=decoded_key,
        data=value,
        traceparent=attributes.get("traceparent"),
    )


def decode_payment(event: CloudEvent) -> PaymentRecorded:
    """The data of a `payment.*` event, checked against its model and its own `ce_type`.

    Raises:
        InvalidEvent: `unsupported_type` for another type, `invalid_schema` for data off the model.
    """
    if not event.event_type.startswith(PAYMENT_TYPE_PREFIX):
        raise InvalidEvent(UNSUPPORTED_TYPE, f"{event.event_type!r} is not a payment event")
    try:
        payment = PaymentRecorded.model_validate_json(event.data)
    except ValidationError as exc:
        # The error lists field locations and kinds only: input values could be anything.
        fields = ", ".join(".".join(str(part) for part in error["loc"]) or "(root)" for error in exc.errors())
        raise InvalidEvent(INVALID_SCHEMA, f"payment data does not match the schema: {fields}") from exc
    if payment_event_type(payment.status) != event.event_type:
        raise InvalidEvent(INVALID_SCHEMA, f"{event.event_type!r} does not match status {payment.status.value!r}")
    if event.key is not None and event.key != payment.order_id:
        raise InvalidEvent(INVALID_SCHEMA, "the record key is not the payment's order id")
    return payment


def _header_map(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name, raw in headers:
        if name in attributes:
            continue  # Kafka allows repeated headers; the first one wins
        try:
            attributes[name] = raw.decode()
        except UnicodeDecodeError as exc:
            raise InvalidEvent(UNDECODABLE, f"header {name} is not UTF-8") from exc
    return attributes


def _parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidEvent(UNDECODABLE, "ce_time is not an RFC 3339 timestamp") from exc
    if moment.tzinfo is None:
        raise InvalidEvent(UNDECODABLE, "ce_time has no offset")
    return moment.astimezone(UTC)
