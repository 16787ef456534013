"""Refund routes: `POST /payments/{payment_id}/refunds` and `GET /payments/{payment_id}/refunds`.

Refunding needs the `admin` role or the `payments:refund` scope; reading a payment's refunds is also
open to its owner. `render_refund_response` lives here, as the service stores that answer for replays.
"""

from typing import Any, Final, assert_never

import orjson
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from payment_service.api.bodies import EdgeRoute, ParsedBody, read_body, validate_header
from payment_service.api.dependencies import (
    IDEMPOTENCY_KEY_HEADER,
    CurrentCustomer,
    PaymentIdPath,
    PaymentServiceDep,
    app_state,
    authenticate,
    idempotency_key_adapter,
)
from payment_service.api.errors import problem_dict
from payment_service.api.schemas import PROBLEM_JSON, ProblemResponse, RefundRequest, RefundResponse, refund_dict
from payment_service.domain.errors import PermissionDenied
from payment_service.domain.refunds import Refund, RefundStatus
from payment_service.services.refunds import RefundCommand
from payment_service.store.idempotency import StoredResponse

router = APIRouter(prefix="/payments", tags=["refunds"], route_class=EdgeRoute)

JSON: Final = "application/json"


def render_refund_response(refund: Refund) -> StoredResponse:
    """The HTTP status and body answering a refund request that produced `refund`."""
    match refund.status:
        case RefundStatus.SUCCEEDED:
            return StoredResponse(201, orjson.dumps(refund_dict(refund)))
        case RefundStatus.UNKNOWN | RefundStatus.PROCESSING:
            return StoredResponse(202, orjson.dumps(refund_dict(refund)))
        case RefundStatus.FAILED:
            problem = problem_dict(
                502,
                "refund_failed",
                detail="The payment gateway refused the refund; no money was moved.",
                reason_code=refund.gateway.reason_code if refund.gateway is not None else None,
                refund=refund_dict(refund),
            )
            return StoredResponse(502, orjson.dumps(problem))
        case _:
            assert_never(refund.status)


REFUND_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    201: {"model": RefundResponse, "description": "Refunded or voided."},
    202: {"model": RefundResponse, "description": "Sent, answer lost: `unknown` until the reconciler settles it."},
    403: {"model": ProblemResponse, "description": "Needs the admin role or the payments:refund scope."},
    404: {"model": ProblemResponse},
    409: {
        "model": ProblemResponse,
        "description": "Nothing captured to refund, a partial amount before settlement (void the whole amount, "
        "or refund part once settled), or the Idempotency-Key in flight.",
    },
    422: {"model": ProblemResponse, "description": "An amount beyond what is left to refund, or an invalid body."},
    502: {"model": ProblemResponse, "description": "The gateway refused the refund: nothing was moved."},
    503: {"model": ProblemResponse, "description": "The gateway or db-service is unreachable: nothing was sent."},
}


@router.post(
    "/{payment_id}/refunds",
    summary="Refund or void a payment (admin, or the payments:refund scope)",
    status_code=201,
    response_class=Response,
    responses=REFUND_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {JSON: {"schema": {"$ref": "#/components/schemas/RefundRequest"}}},
        },
        "security": [{"bearer": []}],  # the route authenticates itself (`authenticate`)
    },
)
async def create_refund(payment_id: PaymentIdPath, request: Request) -> Response:
    principal = await authenticate(request)
    if not principal.can_refund:
        raise PermissionDenied("refunds need the admin role or the payments:refund scope")
    # No body at all refunds everything that is left.
    parsed = await read_body(request, RefundRequest) if await request.body() else ParsedBody(RefundRequest())
    idempotency_key, errors = validate_header(request, IDEMPOTENCY_KEY_HEADER, idempotency_key_adapter)
    body = parsed.model
    if errors or body is None:
        raise RequestValidationError([*errors, *parsed.errors])
    command = RefundCommand(payment_id=payment_id, amount=body.amount, reason=body.reason)
    result = await app_state(request)["refunds"].refund(
        command, requested_by=principal.customer_id, idempotency_key=idempotency_key, render=render_refund_response
    )
    status = result.response.status_code
    headers: dict[str, str] = {}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    media_type = JSON if status < 300 else PROBLEM_JSON
    return Response(result.response.body, status_code=status, media_type=media_type, headers=headers)


@router.get(
    "/{payment_id}/refunds",
    summary="The refunds and voids of a payment, oldest first",
    response_class=Response,
    responses={200: {"model": list[RefundResponse]}, 404: {"model": ProblemResponse}},
)
async def list_refunds(
    payment_id: PaymentIdPath, request: Request, principal: CurrentCustomer, payments: PaymentServiceDep
) -> Response:
    # Its owner, an admin or a refunding service may read them; anyone else is told it does not exist.
    await payments.get(payment_id, customer_id=principal.customer_id, is_admin=principal.can_refund)
    found = await app_state(request)["refunds"].list_for_payment(payment_id)
    return Response(orjson.dumps([refund_dict(r) for r in found]), media_type=JSON)
