"""An OTLP/HTTP trace receiver that counts what it is sent, for measuring the cost of tracing.

    .venv/bin/python bench/otlp_sink.py --port 4318 &
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 .venv/bin/python bench/pay_flow.py --kafka HOST:PORT

It runs as a process of its own, so its CPU is not billed to the service measured. On SIGTERM or
Ctrl-C it prints the requests and spans received.
"""

import argparse
import contextlib
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class Sink(ThreadingHTTPServer):
    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.lock = threading.Lock()
        self.requests = 0
        self.spans = 0


class _Handler(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        exported = ExportTraceServiceRequest.FromString(body)
        count = sum(len(scope.spans) for resource in exported.resource_spans for scope in resource.scope_spans)
        with self.server.lock:
            self.server.requests += 1
            self.server.spans += count
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
    print(f"otlp sink: {sink.requests} export requests, {sink.spans} spans")


if __name__ == "__main__":
    main()
