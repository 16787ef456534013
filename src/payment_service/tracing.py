"""OpenTelemetry tracing: off, and free, unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

`configure_tracing` (called once by each entrypoint) installs the SDK's tracer provider with the OTLP/HTTP
exporter, which reads the standard `OTEL_*` variables itself, and instruments aiohttp's client sessions, so
every db-service and gateway request is a client span that carries its `traceparent`. `instrument_app`
adds a server span per API request. The adapters add spans of their own through `span` and
`producer_spans`; with tracing off these return at once and nothing is recorded.

Kafka hops carry the W3C `traceparent` header: the outbox stores the context of the request that wrote
each event (`current_traceparent`), the relay publishes the event in a producer span under it and puts
that span in the header, and the consumer continues it (`span(..., parent=…)`). So one trace runs from
the request through Kafka to the consumer's db-service write. Attributes never hold card data: ids,
outcomes and status codes only.

What does not live here: the Prometheus metrics (`services/metrics.py`, `messaging/metrics.py`).
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Final

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from fastapi import FastAPI

ENDPOINT_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Probes and scrapes would be most of the spans and tell nothing.
_UNTRACED_PATHS: Final = "healthz,readyz,metrics"
_OFF: Final[AbstractContextManager[None]] = nullcontext()
_propagator: Final = TraceContextTextMapPropagator()

_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None


def is_enabled() -> bool:
    return _tracer is not None


def configure_tracing(service_name: str, *, processor: SpanProcessor | None = None) -> bool:
    """Turn tracing on when an OTLP endpoint is configured (or a `processor` is given); True when on.

    Args:
        service_name: `service.name` of the spans, unless `OTEL_SERVICE_NAME` names another.
        processor: where spans go instead of the OTLP exporter (tests pass an in-memory one).
    """
    global _provider, _tracer
    if processor is None:
        if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
            return False
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(OTLPSpanExporter())
    if _provider is not None:
        shutdown_tracing()
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(processor)
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    _provider, _tracer = provider, provider.get_tracer("payment_service")
    return True


def shutdown_tracing() -> None:
    """Export what is buffered and turn tracing off (at process exit, and between tests)."""
    global _provider, _tracer
    if _provider is None:
        return
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    AioHttpClientInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = _tracer = None


def instrument_app(app: "FastAPI") -> None:
    """A server span per request (not for probes and scrapes), when tracing is on."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_provider, excluded_urls=_UNTRACED_PATHS, exclude_spans=["receive", "send"]
    )


def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> AbstractContextManager[Span | None]:
    """A span around the block, current inside it, or None when tracing is off.

    Its parent is the W3C traceparent `parent` when given (a consumed record's), else the current span.
    """
    if _tracer is None:
        return _OFF
    context = _propagator.extract({"traceparent": parent}) if parent is not None else None
    return _tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)


def annotate(current: Span | None, attributes: Mapping[str, AttributeValue]) -> None:
    """Add attributes to a span of `span` (a no-op with tracing off)."""
    if current is not None:
        current.set_attributes(attributes)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, or None when tracing is off or no span is current."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def producer_spans(
    messages: Sequence[tuple[str, str, str | None]],
) -> Iterator[list[str | None]]:
    """A producer span per (topic, event id, traceparent it was written under), ended with the block.

    Yields, per message, the traceparent its record should carry: its producer span's, or the one given
    when tracing is off. A failure in the block marks every span as failed.
    """
    if _tracer is None:
        yield [traceparent for _, _, traceparent in messages]
        return
    spans = [
        _tracer.start_span(
            f"{topic} publish",
            context=_propagator.extract({"traceparent": traceparent}) if traceparent else None,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": event_id,
            },
        )
        for topic, event_id, traceparent in messages
    ]
    try:
        yield [_traceparent_of(item) for item in spans]
    except BaseException as exc:
        for item in spans:
            item.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        for item in spans:
            item.end()


def _traceparent_of(item: Span) -> str | None:
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(item))
    return carrier.get("traceparent")
