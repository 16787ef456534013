"""The AsyncAPI 3.0 document of the service's topics, generated from the event models.

`python -m payment_service.messaging.asyncapi > docs/asyncapi.yaml` writes it; a unit test fails
when the committed document and `build_document()` differ, so the models and the document cannot
drift apart. Payload schemas come from the Pydantic models' JSON Schemas (serialisation mode);
headers describe the CloudEvents binary-mode envelope written by `codec.py`. Topic addresses are
the defaults of `KafkaSettings`; deployments may rename them.
"""

import sys
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from payment_service.domain.events import EVENT_SOURCE, OrderPaid, OrderRefunded, PaymentRecorded, payment_event_type
from payment_service.domain.payments import TERMINAL_STATUSES, PaymentStatus
from payment_service.messaging.codec import CONTENT_TYPE, SPEC_VERSION
from payment_service.messaging.publisher import (
    DLQ_ERROR,
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    DLQ_REASON,
)
from payment_service.settings import KafkaSettings

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
SCHEMA_REF = "#/components/schemas/{model}"

# In the order DESIGN §5 lists them.
PAYMENT_STATUSES_PUBLISHED = [
    status
    for status in (
        PaymentStatus.APPROVED,
        PaymentStatus.DECLINED,
        PaymentStatus.FAILED,
        PaymentStatus.HELD_FOR_REVIEW,
        PaymentStatus.REFUNDED,
        PaymentStatus.VOIDED,
    )
    if status in TERMINAL_STATUSES | {PaymentStatus.HELD_FOR_REVIEW}
]
NOTIFICATION_TYPES = ("order.paid", "order.refunded")

_TRACEPARENT_PATTERN = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


def _payload_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    _, top = models_json_schema([(model, "serialization") for model in models], ref_template=SCHEMA_REF)
    definitions: dict[str, Any] = top.get("$defs", {})
    return dict(sorted(definitions.items()))


def _envelope_headers(event_type: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes in binary content mode (one Kafka header each).",
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "content-type",
            "traceparent",
        ],
        "properties": {
            "ce_specversion": {"type": "string", "const": SPEC_VERSION},
            "ce_id": {"type": "string", "format": "uuid", "description": "Unique per event: the dedupe key."},
            "ce_source": {"type": "string", "const": EVENT_SOURCE},
            "ce_type": {"type": "string", "const": event_type},
            "ce_time": {"type": "string", "format": "date-time", "description": "When it happened (UTC)."},
            "ce_subject": {"type": "string", "description": "payments/{payment_id} or orders/{order_id}."},
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            "traceparent": {"type": "string", "pattern": _TRACEPARENT_PATTERN, "description": "W3C trace context."},
        },
    }


def _message(event_type: str, payload: str, summary: str) -> dict[str, Any]:
    return {
        "name": event_type,
        "title": event_type,
        "summary": summary,
        "contentType": CONTENT_TYPE,
        "headers": _envelope_headers(event_type),
        "payload": {"$ref": SCHEMA_REF.format(model=payload)},
        "bindings": {
            "kafka": {"key": {"type": "string", "description": "The order id: one order's events stay in order."}}
        },
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead-letter",
        "title": "Dead letter",
        "summary": "A payment event the consumer could not process for good: original key, value and headers.",
        "headers": {
            "type": "object",
            "description": "The original headers, plus these.",
            "required": [DLQ_REASON, DLQ_ERROR, DLQ_ORIGINAL_TOPIC, DLQ_ORIGINAL_PARTITION, DLQ_ORIGINAL_OFFSET],
            "properties": {
                DLQ_REASON: {
                    "type": "string",
                    "description": "undecodable, invalid_schema, unsupported_type, the error code of a refused "
                    "write (e.g. db_service_error), or unexpected_error.",
                },
                DLQ_ERROR: {"type": "string", "description": "What went wrong, without data values."},
                DLQ_ORIGINAL_TOPIC: {"type": "string"},
                DLQ_ORIGINAL_PARTITION: {"type": "string", "pattern": "^[0-9]+$"},
                DLQ_ORIGINAL_OFFSET: {"type": "string", "pattern": "^[0-9]+$"},
            },
        },
        "payload": {"description": "The original record value, unchanged (it may not be JSON)."},
    }


def build_document() -> dict[str, Any]:
    topics = KafkaSettings()
    payment_types = [payment_event_type(status) for status in PAYMENT_STATUSES_PUBLISHED]
    messages: dict[str, Any] = {
        **{
            t: _message(t, PaymentRecorded.__name__, "A payment reached this status; `version` orders its records.")
            for t in payment_types
        },
        "order.paid": _message("order.paid", OrderPaid.__name__, "What a notification or inventory service needs."),
        "order.refunded": _message(
            "order.refunded",
            OrderRefunded.__name__,
            "Money given back for an order (refund or void): this refund, the total, and the items when full.",
        ),
        "dead-letter": _dead_letter_message(),
    }

    def refs(names: list[str] | tuple[str, ...]) -> dict[str, Any]:
        return {name: {"$ref": f"#/components/messages/{name}"} for name in names}

    def operation(action: str, channel: str, names: list[str] | tuple[str, ...], summary: str) -> dict[str, Any]:
        return {
            "action": action,
            "summary": summary,
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names],
        }

    def partitions() -> dict[str, Any]:  # a fresh dict each time: YAML would otherwise write anchors
        return {"kafka": {"partitions": topics.topic_partitions, "replicas": topics.replication_factor}}

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Payment service events",
            "version": DOCUMENT_VERSION,
            "description": "Events the payment service publishes through its outbox (at least once, in order per "
            "order id), as CloudEvents 1.0 in binary content mode. Consumers deduplicate by `ce_id`, or by "
            "payment id and `version`. Generated by `python -m payment_service.messaging.asyncapi`.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": topics.bootstrap_servers,
                "protocol": "kafka",
                "description": "The broker of `make run` (scripts/kafka/kafka.sh).",
            }
        },
        "channels": {
            "payments": {
                "address": topics.payment_topic,
                "description": "Every published payment status (PAYMENTS_KAFKA__PAYMENT_TOPIC).",
                "messages": refs(payment_types),
                "bindings": partitions(),
            },
            "notifications": {
                "address": topics.notification_topic,
                "description": "Order-level facts for other services (PAYMENTS_KAFKA__NOTIFICATION_TOPIC).",
                "messages": refs(NOTIFICATION_TYPES),
                "bindings": partitions(),
            },
            "deadLetters": {
                "address": topics.dlq_topic,
                "description": "Payment events the consumer gave up on, for operators (PAYMENTS_KAFKA__DLQ_TOPIC).",
                "messages": refs(["dead-letter"]),
                "bindings": partitions(),
            },
        },
        "operations": {
            "publishPayment": operation("send", "payments", payment_types, "The outbox relay publishes payments."),
            "recordPayment": operation(
                "receive", "payments", payment_types, "The payment consumer writes them to the db-service."
            ),
            "publishNotification": operation(
                "send", "notifications", NOTIFICATION_TYPES, "The outbox relay publishes order events."
            ),
            "publishDeadLetter": operation(
                "send", "deadLetters", ["dead-letter"], "The payment consumer parks what it cannot process."
            ),
        },
        "components": {
            "messages": messages,
            "schemas": _payload_schemas([PaymentRecorded, OrderPaid, OrderRefunded]),
        },
    }


def render_document() -> str:
    header = "# Generated by `python -m payment_service.messaging.asyncapi`; do not edit by hand.\n"
    return header + str(yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=100))


if __name__ == "__main__":
    sys.stdout.write(render_document())
