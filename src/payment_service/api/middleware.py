"""Request context as pure ASGI middleware: request id, trace context, and the last-resort 500.

Each request gets an `X-Request-ID` (the client's when it is sane, else a new one) and a `traceparent`
whose parent is a new span of ours (continuing the client's trace when it sent one). Both are bound to
structlog's contextvars, so log lines and db-service calls carry them, and the request id is echoed in
the response. An exception nothing else handled becomes a problem+json 500 naming only the request id.
Every answer, errors included, carries the security headers a JSON API should send (`SECURITY_HEADERS`).
"""

import os
import re
from contextvars import ContextVar
from typing import Final

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payment_service import tracing

log = structlog.get_logger(__name__)

_request_id: ContextVar[str | None] = ContextVar("payment_service_request_id", default=None)
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT: Final = re.compile(r"00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})")
# OWASP's REST security headers: answers hold payment data, so no cache keeps them, no browser sniffs
# them into HTML or frames them; HSTS for when TLS is terminated in front of us (ignored over plain HTTP).
SECURITY_HEADERS: Final = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=31536000"),
)
_SECURITY_HEADER_NAMES: Final = frozenset(name for name, _ in SECURITY_HEADERS)


def current_request_id() -> str | None:
    return _request_id.get()


def _child_traceparent(incoming: str | None) -> str:
    span_id = os.urandom(8).hex()
    if incoming is not None and (match := _TRACEPARENT.fullmatch(incoming)) and match[1] != "0" * 32:
        return f"00-{match[1]}-{span_id}-{match[2]}"
    return f"00-{os.urandom(16).hex()}-{span_id}-01"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: str | None = None
        incoming_trace: str | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                incoming_trace = value.decode("latin-1")
        if request_id is None or not _REQUEST_ID.fullmatch(request_id):
            request_id = os.urandom(12).hex()
        # With tracing on, the server span (continuing the client's trace) is current here.
        traceparent = tracing.current_traceparent() or _child_traceparent(incoming_trace)
        request_id_header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                # A route's own choice (the docs page's cache policy, say) wins over the default.
                present = {name.lower() for name, _ in headers} & _SECURITY_HEADER_NAMES
                headers += [header for header in SECURITY_HEADERS if header[0] not in present]
                message["headers"] = [*headers, request_id_header]
            await send(message)

        token = _request_id.set(request_id)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id, traceparent=traceparent)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request.crashed", method=scope.get("method"), path=scope.get("path"))
            if started:
                raise
            body = orjson.dumps(
                {
                    "type": "about:blank",
                    "title": "Internal error",
                    "status": 500,
                    "code": "internal_error",
                    "request_id": request_id,
                }
            )
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            _request_id.reset(token)
