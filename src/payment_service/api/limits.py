"""`SizeLimitMiddleware`: request bodies and headers bounded before anything parses them.

Headers larger than `max_header_bytes` in all answer 431; a body larger than `max_body_bytes` answers
413, at once when `Content-Length` says so, else as soon as the bytes received pass the limit (a chunked
body is never buffered whole). Both come before authentication, so an anonymous caller cannot make the
service read, hold or parse more than the limits. JSON nesting is bounded where the body is parsed
(`bodies.py`).
"""

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payment_service.api.errors import problem_response
from payment_service.domain.errors import RequestTooLarge

_CONTENT_LENGTH: Final = b"content-length"


class SizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = 0
        declared: int | None = None
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            if name == _CONTENT_LENGTH and value.isdigit():
                declared = int(value)
        if header_bytes > self.max_header_bytes:
            await self._refuse(431, "headers_too_large", f"headers over {self.max_header_bytes} bytes", scope, send)
            return
        if declared is not None:
            if declared > self.max_body_bytes:
                await self._refuse(413, RequestTooLarge.code, f"body over {self.max_body_bytes} bytes", scope, send)
                return
            # The server delivers no more than `Content-Length` bytes: nothing left to count.
            await self.app(scope, receive, send)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # Raised where the route reads its body; the app's error handler answers 413.
                    raise RequestTooLarge(f"body over {self.max_body_bytes} bytes")
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _refuse(status: int, code: str, detail: str, scope: Scope, send: Send) -> None:
        # The connection closes after the answer: the rest of an oversized request is never read.
        response = problem_response(status, code, detail=detail, headers={"Connection": "close"})
        await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
