"""`POST /webhooks/authorizenet`: Authorize.Net notifications, verified and stored before the answer.

The route reads at most `webhooks.max_body_bytes` and hands the exact bytes to `WebhookService.receive`
(the signature covers them); processing happens after the answer, from the store.
"""

from typing import Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from payment_service.api.bodies import EdgeRoute
from payment_service.api.dependencies import app_state
from payment_service.api.schemas import ProblemResponse
from payment_service.domain.errors import RequestTooLarge
from payment_service.gateway.webhooks import SIGNATURE_HEADER

router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=EdgeRoute)

_RECEIVED: Final = b'{"received":true}'


async def read_bounded_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused as soon as it is known to exceed `max_bytes` (declared or streamed).

    Raises:
        RequestTooLarge: the body is larger than `max_bytes`.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise RequestTooLarge(f"the body may be at most {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise RequestTooLarge(f"the body may be at most {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/authorizenet",
    summary="Receive an Authorize.Net webhook notification",
    description=(
        "Signed with `X-ANET-Signature: sha512=<HEX>` (HMAC-SHA512 of the body with the signature key). "
        "Stored once per `notificationId` and answered at once; the transaction is then re-read from the "
        "gateway and applied."
    ),
    response_class=Response,
    responses={
        200: {"content": {"application/json": {"example": {"received": True}}}},
        401: {"model": ProblemResponse},
        413: {"model": ProblemResponse},
        422: {"model": ProblemResponse},
    },
)
async def receive_authorizenet(request: Request) -> Response:
    state = app_state(request)
    body = await read_bounded_body(request, state["settings"].webhooks.max_body_bytes)
    await state["webhooks"].receive(body, signature=request.headers.get(SIGNATURE_HEADER))
    return Response(_RECEIVED, media_type="application/json")
