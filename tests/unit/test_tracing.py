"""Tracing set-up: off without an endpoint, spans over OTLP/HTTP with one (to a local receiver)."""

import importlib.util
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from payment_service import tracing
from tests.conftest import REPO_ROOT

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def load_sink() -> ModuleType:
    """`bench/otlp_sink.py` (the benchmarks' receiver): bench/ is a directory of scripts, not a package."""
    spec = importlib.util.spec_from_file_location("otlp_sink", REPO_ROOT / "bench" / "otlp_sink.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def receiver() -> Iterator[Any]:
    """An OTLP/HTTP trace receiver on 127.0.0.1 that keeps what it is sent."""
    server = load_sink().Sink(0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class TestTracing:
    @pytest.mark.usefixtures("no_endpoint")
    def test_without_an_endpoint_nothing_is_set_up_and_spans_are_one_shared_no_op(self) -> None:
        assert tracing.configure_tracing("payment-service-test") is False
        assert not tracing.is_enabled()
        first, second = tracing.span("a"), tracing.span("b", parent=TRACEPARENT)
        assert first is second
        with first as span:
            assert span is None
            assert tracing.current_traceparent() is None
        with tracing.producer_spans([("payments", "e1", TRACEPARENT), ("payments", "e2", None)]) as parents:
            assert parents == [TRACEPARENT, None]

    def test_with_an_endpoint_spans_go_to_it_over_otlp_http_continuing_a_given_trace(
        self, monkeypatch: pytest.MonkeyPatch, receiver: Any
    ) -> None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        assert tracing.configure_tracing("payment-service-test") is True
        try:
            with tracing.producer_spans([("payments", "event-1", TRACEPARENT)]) as (published,):
                pass
            assert published is not None
            assert published.split("-")[1] == TRACEPARENT.split("-")[1]
            with tracing.span("payments process", parent=published) as span:
                assert span is not None
                tracing.annotate(span, {"payment.gateway.outcome": "approved"})
                current = tracing.current_traceparent()
            assert current is not None
            assert current.split("-")[1] == TRACEPARENT.split("-")[1]
        finally:
            tracing.shutdown_tracing()  # flushes the batch to the receiver

        assert not tracing.is_enabled()
        (path, exported), *_ = receiver.received
        assert path == "/v1/traces"
        (resource_spans,) = exported.resource_spans
        service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
        assert service == "payment-service-test"
        spans = {s.name: s for scope in resource_spans.scope_spans for s in scope.spans}
        assert set(spans) == {"payments publish", "payments process"}
        assert spans["payments process"].parent_span_id == spans["payments publish"].span_id
        assert spans["payments publish"].trace_id.hex() == TRACEPARENT.split("-")[1]

    def test_sampling_follows_the_standard_variables_and_the_decision_in_a_traceparent(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")  # no new trace is sampled
        exporter = InMemorySpanExporter()
        assert tracing.configure_tracing("payment-service-test", processor=SimpleSpanProcessor(exporter))
        try:
            with tracing.span("root"):
                unsampled_parent = tracing.current_traceparent()
            assert unsampled_parent is not None
            assert int(unsampled_parent.rsplit("-", 1)[1], 16) & 1 == 0  # the "sampled" flag is not set
            with tracing.producer_spans([("payments", "e1", unsampled_parent), ("payments", "e2", TRACEPARENT)]):
                pass
            with tracing.span("payments process", parent=unsampled_parent):
                pass
        finally:
            tracing.shutdown_tracing()
        # Only the span under the sampled traceparent (flags 01) was recorded.
        assert [
            (span.name, span.attributes and span.attributes["messaging.message.id"])
            for span in exporter.get_finished_spans()
        ] == [("payments publish", "e2")]
