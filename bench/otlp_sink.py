"""An OTLP/HTTP trace receiver that keeps what it is sent, for measuring the cost of tracing.

    .venv/bin/python bench/otlp_sink.py --port 4318 &
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 .venv/bin/python bench/pay_flow.py --kafka HOST:PORT

It runs as a process of its own, so its CPU is not billed to the service measured. On SIGTERM or
Ctrl-C it prints the requests and spans received. `tests/unit/test_tracing.py` uses `Sink` too.
"""

import argparse
import contextlib
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Sink(ThreadingHTTPServer):
    """Listens on 127.0.0.1:`port` (0: a free one); `received` holds (path, decoded request) in arrival order."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.lock = threading.Lock()
        self.received: list[tuple[str, ExportTraceServiceRequest]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def span_count(self) -> int:
        with self.lock:
            requests = [request for _, request in self.received]
        return sum(
            len(scope.spans) for request in requests for rs in request.resource_spans for scope in rs.scope_spans
        )


class _Handler(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.received.append((self.path, request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    sink = Sink(args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=sink.shutdown).start())
    with contextlib.suppress(KeyboardInterrupt):
        sink.serve_forever()
    print(f"otlp sink: {len(sink.received)} export requests, {sink.span_count()} spans")


if __name__ == "__main__":
    main()
