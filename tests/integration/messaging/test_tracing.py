"""OpenTelemetry: one trace from the API request through Kafka to the consumer's db-service write; refunds.

Real broker, real reference db-service, real simulator; the spans go to an in-memory exporter.
"""

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from payment_service import tracing
from payment_service.api.app import create_app
from payment_service.settings import Settings
from tests.integration.conftest import VISA, Shop, app_client, card_body, store_rows
from tests.integration.messaging.test_end_to_end import DEADLINE_S, outbox_drained, running_worker, with_kafka
from tests.support.events import fresh_kafka_settings, header, read_topic, wait_until
from tests.support.refunds import paid


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("payment-service-test", processor=SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        tracing.shutdown_tracing()


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    (parent,) = [other for other in spans if other.context is not None and other.context.span_id == span.parent.span_id]
    return parent


def trace_hex(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


class TestTracing:
    async def test_one_trace_runs_from_the_request_through_kafka_to_the_consumers_db_service_write(
        self, service_settings: Settings, shop: Shop, kafka_bootstrap: str, exported: InMemorySpanExporter
    ) -> None:
        kafka = await fresh_kafka_settings(kafka_bootstrap)
        settings = with_kafka(service_settings, kafka)
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        consumer_span = f"{kafka.payment_topic} process"

        async with app_client(create_app(settings)) as client, running_worker(settings):
            response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
            assert response.status_code == 201, response.text

            async def consumed() -> bool:
                return any(
                    span.name == consumer_span and span.attributes and span.attributes.get("messaging.message.id")
                    for span in exported.get_finished_spans()
                )

            await wait_until(consumed, timeout_s=DEADLINE_S)
            await wait_until(lambda: outbox_drained(settings), timeout_s=DEADLINE_S)

        spans = list(exported.get_finished_spans())
        (request,) = [s for s in spans if s.kind is SpanKind.SERVER and s.name == "POST /payments/pay"]
        trace = [s for s in spans if trace_hex(s) == trace_hex(request)]
        names = {s.name for s in trace}

        (charge,) = named(trace, "authorize.net charge")
        payment = response.json()
        assert charge.attributes is not None
        assert charge.attributes["payment.gateway.outcome"] == "approved"
        assert charge.attributes["payment.gateway.transaction_id"] == payment["gateway"]["transaction_id"]
        assert "db-service GET orders" in names
        # Every outgoing HTTP request is an aiohttp client span inside its adapter's span.
        http_spans = [s for s in trace if s.kind is SpanKind.CLIENT and s.name in {"GET", "POST", "PATCH", "PUT"}]
        assert {parent_of(s, trace).name for s in http_spans} >= {"authorize.net charge", "db-service GET orders"}

        (publish,) = named(trace, f"{kafka.payment_topic} publish")
        assert publish.kind is SpanKind.PRODUCER
        assert parent_of(publish, trace) is request
        (consume,) = named(trace, consumer_span)
        assert consume.kind is SpanKind.CONSUMER
        assert parent_of(consume, trace) is publish
        (put,) = named(trace, "db-service PUT payments")
        assert parent_of(put, trace) is consume
        assert put.attributes is not None
        assert put.attributes["http.response.status_code"] == 201

        (record,) = await read_topic(kafka_bootstrap, kafka.payment_topic, at_least=1)
        assert trace_hex(request) in (header(record, "traceparent") or "")
        # Never card data, in any attribute of any span.
        for span in spans:
            assert VISA not in repr(dict(span.attributes or {})), span.name

    async def test_a_refund_is_one_trace_from_its_request_to_its_gateway_call_and_its_events(
        self, exported: InMemorySpanExporter, api_client: httpx.AsyncClient, shop: Shop, service_settings: Settings
    ) -> None:
        # `exported` first: tracing is on before the app (and its server spans) is made.
        payment = await paid(api_client, shop)
        exported.clear()

        response = await api_client.post(
            f"/payments/{payment['id']}/refunds", json={}, headers=shop.auth("staff-1", roles=("admin",))
        )

        assert response.status_code == 201, response.text
        spans = list(exported.get_finished_spans())
        (request,) = [s for s in spans if s.kind is SpanKind.SERVER]
        assert request.name == "POST /payments/{payment_id}/refunds"
        (void,) = named(spans, "authorize.net void")
        assert trace_hex(void) == trace_hex(request)
        assert void.attributes is not None
        assert void.attributes["payment.gateway.outcome"] == "approved"
        written = store_rows(
            service_settings,
            "SELECT event_type, traceparent FROM outbox WHERE key = ? AND event_type IN (?, ?) ORDER BY seq",
            payment["order_id"],
            "payment.voided",
            "order.refunded",
        )
        assert [(event_type, parent.split("-")[1]) for event_type, parent in written] == [
            ("payment.voided", trace_hex(request)),
            ("order.refunded", trace_hex(request)),
        ]
