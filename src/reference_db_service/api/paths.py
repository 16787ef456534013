"""`EncodedSlashMiddleware`: an id holding an encoded `/` stays one path segment.

uvicorn decodes `%2F` in `scope["path"]`, and Starlette routes on that, so `GET /orders/1001%2Fcancel`
would reach `/orders/{id}/cancel`. Routing on the path with `%2F` left encoded keeps the segment an id
(which then does not exist), whatever the client sent.
"""

from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send


class EncodedSlashMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path: bytes | None = scope.get("raw_path") if scope["type"] == "http" else None
        if raw_path is not None and b"%2f" in raw_path.lower():
            raw = raw_path.decode("latin-1").replace("%2F", "%252F").replace("%2f", "%252F")
            scope = {**scope, "path": unquote(raw)}
        await self.app(scope, receive, send)
