"""`POST /xml/v1/request.api`: the gateway endpoint, as a lean raw ASGI app.

Always HTTP 200 with a leading BOM, in the request's flavour. Steps: record the (masked) body, parse,
dispatch on the root name (E00004), apply scripted faults, validate against the schema tables
(E00003), check credentials (E00007), run the method's handler, then answer, stall or drop the
connection as the faults say. Card data never reaches a log line.
"""

import asyncio
import contextlib
import hmac
import socket
import struct
from email.utils import format_datetime
from typing import Final

import structlog
from starlette.types import Message, Receive, Scope, Send

from authorize_net_simulator.documents import (
    Document,
    Flavour,
    ForeignNamespace,
    Node,
    UnreadableDocument,
    detect_flavour,
    parse_document,
)
from authorize_net_simulator.faults import FaultPlan
from authorize_net_simulator.handlers import HANDLERS, CallContext
from authorize_net_simulator.rendering import CONTENT_TYPES, Tree, render
from authorize_net_simulator.responses import envelope
from authorize_net_simulator.schema import REQUEST_TYPES
from authorize_net_simulator.state import SimulatorState
from authorize_net_simulator.validation import SchemaViolation, validate

log = structlog.get_logger(__name__)

_MAX_BODY_BYTES: Final = 1 << 20


class GatewayEndpoint:
    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        self._login_id = state.settings.login_id.encode()
        self._transaction_key = state.settings.transaction_key.get_secret_value().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"POST"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        body = await _read_body(receive)
        content_type = _header(scope, b"content-type")
        flavour = detect_flavour(content_type, body)
        self._state.record_request(body, content_type)
        root_name, tree, plan = await self._answer(body, flavour)
        if plan.stall_s:
            await _wait_for_disconnect(receive, plan.stall_s)
        if plan.reset_connection and _abort_connection(receive):
            await _wait_for_disconnect(receive, 5.0)
            return
        payload = render(root_name, tree, flavour)
        headers = [
            (b"content-type", CONTENT_TYPES[flavour].encode()),
            (b"content-length", str(len(payload)).encode()),
            # As the live API's web servers do, from the gateway's own clock (a test may set it off ours).
            (b"date", format_datetime(self._state.clock(), usegmt=True).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, body: bytes, flavour: Flavour) -> tuple[str, Tree, FaultPlan]:
        no_faults = FaultPlan()
        try:
            document = parse_document(body, flavour)
        except UnreadableDocument as exc:
            return "ErrorResponse", envelope("E00003", text=exc.detail), no_faults
        except ForeignNamespace:
            return "ErrorResponse", envelope("E00045"), no_faults
        method = document.root.name
        content = REQUEST_TYPES.get(method)
        if content is None:
            return "ErrorResponse", envelope("E00004"), no_faults
        response_name = method.removesuffix("Request") + "Response"
        plan = self._state.faults.plan(method)
        if plan.latency_ms:
            await asyncio.sleep(plan.latency_ms / 1000)
        ref_id = document.root.get_text("refId")
        if plan.error_code is not None:
            return response_name, envelope(plan.error_code, ref_id=ref_id), plan
        try:
            validate(document.root, content)
        except SchemaViolation as exc:
            return "ErrorResponse", envelope("E00003", text=exc.text), plan
        tree = self._handle(document, method, ref_id, plan)
        if plan.error_after_commit:
            return response_name, envelope("E00001", ref_id=ref_id), plan
        return response_name, tree, plan

    def _handle(self, document: Document, method: str, ref_id: str | None, plan: FaultPlan) -> Tree:
        login_id = self._authenticated_login(document.root)
        if login_id is None:
            return envelope("E00007", ref_id=ref_id)
        context = CallContext(login_id=login_id, ref_id=ref_id, hold_reason=plan.hold_reason)
        return HANDLERS[method](self._state, document.root, context)

    def _authenticated_login(self, root: Node) -> str | None:
        authentication = root.get("merchantAuthentication")
        if authentication is None:
            return None
        name = authentication.get_text("name") or ""
        key = authentication.get_text("transactionKey") or ""
        name_ok = hmac.compare_digest(name.encode(), self._login_id)
        key_ok = hmac.compare_digest(key.encode(), self._transaction_key)
        return name if name_ok and key_ok else None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1").lower())
    return ""


async def _wait_for_disconnect(receive: Receive, timeout_s: float) -> None:
    """Hold the answer until the client disconnects or `timeout_s` passes."""

    async def disconnected() -> None:
        message: Message = {"type": ""}
        while message["type"] != "http.disconnect":
            message = await receive()

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), timeout_s)


def _abort_connection(receive: Receive) -> bool:
    """Drop the TCP connection without an HTTP answer (RST), after the transaction was committed.

    ASGI has no way to say this, so reach the server's transport: uvicorn's `receive` is a bound
    method of its per-request cycle, which holds the transport. Returns False when that is not
    available (another server), and the caller then answers normally.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if not isinstance(transport, asyncio.Transport):
        log.warning("fault.reset_unavailable")
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger on, timeout 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True
