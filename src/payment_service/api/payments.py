"""Payment routes: `POST /payments/pay`, `GET /payments/{payment_id}`, `GET /payments?order_id=`.

The routes parse, authenticate and call one service method. How a payment status becomes an HTTP answer
(`render_pay_response`) lives here too, as the service stores that answer for idempotent replays.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Final, assert_never

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from payment_service.api.bodies import EdgeRoute, read_body, validate_header
from payment_service.api.dependencies import (
    IDEMPOTENCY_KEY_DESCRIPTION,
    IDEMPOTENCY_KEY_HEADER,
    CurrentCustomer,
    PaymentIdPath,
    PaymentServiceDep,
    app_state,
    authenticate,
    idempotency_key_adapter,
)
from payment_service.api.errors import problem_dict
from payment_service.api.schemas import (
    ID_PATTERN,
    PROBLEM_JSON,
    PaymentResponse,
    PayRequest,
    ProblemResponse,
    payment_body,
    payment_dict,
)
from payment_service.domain.errors import RawCardInputDisabled
from payment_service.domain.payments import Payment, PaymentStatus
from payment_service.services.payments import PayCommand
from payment_service.store.idempotency import StoredResponse

router = APIRouter(prefix="/payments", tags=["payments"], route_class=EdgeRoute)

JSON: Final = "application/json"
DEFAULT_DECLINE_MESSAGE: Final = "The card was declined. Please use another card or contact your card issuer."
# Customer-safe wording by Authorize.Net reason code; fraud-filter details stay with the merchant.
DECLINE_MESSAGES: Final = {
    "6": "The card number is invalid.",
    "37": "The card number is invalid.",
    "8": "The card has expired.",
    "317": "The card has expired.",
    "27": "The billing address does not match the card.",
    "127": "The billing address does not match the card.",
    "44": "The card code (CVV) does not match the card.",
    "45": "The card code (CVV) does not match the card.",
    "65": "The card code (CVV) does not match the card.",
    "3": "The card issuer asks you to contact them. Please use another card or call your card issuer.",
    "7": "The card's expiration date is invalid.",
    "316": "The card's expiration date is invalid.",
    "78": "The card code (CVV) is invalid.",
    "315": "The card number is invalid.",
    # Accept.js opaque data the gateway does not take: garbage, already used, or older than 15 minutes.
    "E00114": "The payment details could not be used. Please enter the card again.",
    "E00115": "The payment details have expired. Please enter the card again.",
}


def decline_message(reason_code: str | None) -> str:
    return DECLINE_MESSAGES.get(reason_code or "", DEFAULT_DECLINE_MESSAGE)


def render_pay_response(payment: Payment) -> StoredResponse:
    """The HTTP status and body answering a pay request that produced `payment` (DESIGN §3)."""
    reason_code = payment.gateway.reason_code if payment.gateway is not None else None
    match payment.status:
        case PaymentStatus.APPROVED:
            return StoredResponse(201, payment_body(payment))
        case PaymentStatus.HELD_FOR_REVIEW | PaymentStatus.UNKNOWN | PaymentStatus.PROCESSING:
            return StoredResponse(202, payment_body(payment))
        case PaymentStatus.DECLINED:
            problem = problem_dict(
                402,
                "payment_declined",
                detail=decline_message(reason_code),
                reason_code=reason_code,
                payment=payment_dict(payment),
            )
            return StoredResponse(402, orjson.dumps(problem))
        case PaymentStatus.FAILED:
            problem = problem_dict(
                502,
                "gateway_error",
                detail="The payment gateway reported an error; the card was not charged.",
                reason_code=reason_code,
                payment=payment_dict(payment),
            )
            return StoredResponse(502, orjson.dumps(problem))
        case PaymentStatus.PARTIALLY_REFUNDED | PaymentStatus.REFUNDED | PaymentStatus.VOIDED:
            return StoredResponse(200, payment_body(payment))
        case _:
            assert_never(payment.status)


def _example_payment(status: str, **gateway: Any) -> dict[str, Any]:
    return {
        "id": "pay_01JAYQ5N3K8T2M0QWX",
        "order_id": "1001",
        "customer_id": "42",
        "status": status,
        "amount": "59.97",
        "currency": "USD",
        "gateway": {"name": "authorize.net", **gateway} if gateway else None,
        "created_at": "2025-01-01T12:00:00Z",
        "updated_at": "2025-01-01T12:00:01Z",
    }


def _problem_example(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    title = code.replace("_", " ").capitalize()
    return {"value": {"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail, **extra}}


_APPROVED_GATEWAY: Final = {
    "transaction_id": "80012345678",
    "auth_code": "QW7T2K",
    "response_code": "1",
    "reason_code": "1",
    "message": "This transaction has been approved.",
    "avs_result": "Y",
    "cvv_result": "M",
    "account_number": "XXXX1111",
    "account_type": "Visa",
}

PAY_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    201: {
        "description": "Approved. `Location` names the payment.",
        "model": PaymentResponse,
        "content": {JSON: {"example": _example_payment("approved", **_APPROVED_GATEWAY)}},
    },
    202: {
        "description": "Held for review by fraud filters, or the outcome is unknown (resolved later).",
        "model": PaymentResponse,
        "content": {
            JSON: {
                "examples": {
                    "held_for_review": {
                        "value": _example_payment(
                            "held_for_review", transaction_id="80012345679", response_code="4", reason_code="253"
                        )
                    },
                    "unknown": {"value": _example_payment("unknown", message="No answer was read from the gateway.")},
                }
            }
        },
    },
    401: {"description": "Missing, invalid or expired token.", "model": ProblemResponse},
    402: {
        "description": "Declined by the card issuer; `reason_code` and a customer-safe `detail`.",
        "model": ProblemResponse,
        "content": {
            PROBLEM_JSON: {
                "example": _problem_example(
                    402,
                    "payment_declined",
                    DEFAULT_DECLINE_MESSAGE,
                    reason_code="2",
                    payment=_example_payment("declined", response_code="2", reason_code="2"),
                )["value"]
            }
        },
    },
    404: {"description": "No such order, or not yours.", "model": ProblemResponse},
    409: {
        "description": "Order already paid or cancelled, a payment in progress, or the Idempotency-Key in flight.",
        "model": ProblemResponse,
        "content": {
            PROBLEM_JSON: {
                "examples": {
                    "order_not_payable": _problem_example(
                        409, "order_not_payable", "order 1001 cannot be paid: order is already paid"
                    ),
                    "payment_in_progress": _problem_example(
                        409, "payment_in_progress", "a payment for order 1001 is already in progress or done"
                    ),
                    "idempotency_key_in_flight": _problem_example(
                        409, "idempotency_key_in_flight", "a request with this Idempotency-Key is still being processed"
                    ),
                }
            }
        },
    },
    422: {
        "description": "Invalid body or card, amount or customer mismatch, raw card input disabled, key reused.",
        "model": ProblemResponse,
        "content": {
            PROBLEM_JSON: {
                "examples": {
                    "amount_mismatch": _problem_example(
                        422, "amount_mismatch", "amount does not match the order total"
                    ),
                    "invalid_card": _problem_example(422, "invalid_card", "card number is invalid"),
                    "idempotency_key_reused": _problem_example(
                        422, "idempotency_key_reused", "this Idempotency-Key was used with a different request"
                    ),
                }
            }
        },
    },
    502: {
        "description": "The gateway reported an error; the card was not charged.",
        "model": ProblemResponse,
        "content": {
            PROBLEM_JSON: {
                "example": _problem_example(
                    502,
                    "gateway_error",
                    "The payment gateway reported an error; the card was not charged.",
                    reason_code="E00003",
                )["value"]
            }
        },
    },
    503: {
        "description": "The db-service or the gateway is unavailable, or the gateway rejected our set-up; nothing was charged. `Retry-After` says when to retry.",
        "model": ProblemResponse,
    },
}


# The route reads its body and headers itself (see `api/bodies.py`), so OpenAPI is told what FastAPI
# would have derived from parameters; `create_app` adds the PayRequest schema to the components.
PAY_OPENAPI: Final[dict[str, Any]] = {
    "parameters": [
        {
            "name": IDEMPOTENCY_KEY_HEADER,
            "in": "header",
            "required": False,
            "description": IDEMPOTENCY_KEY_DESCRIPTION,
            "schema": {
                "anyOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "null"}],
                "title": IDEMPOTENCY_KEY_HEADER,
                "description": IDEMPOTENCY_KEY_DESCRIPTION,
            },
        }
    ],
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/PayRequest"}}},
    },
    "security": [{"bearer": []}],
}


@router.post(
    "/pay",
    summary="Pay for an order",
    status_code=201,
    response_class=Response,
    responses=PAY_RESPONSES,
    openapi_extra=PAY_OPENAPI,
)
async def pay(request: Request) -> Response:
    parsed = await read_body(request, PayRequest)  # an undecodable body is refused before authentication
    principal = await authenticate(request)
    idempotency_key, errors = validate_header(request, IDEMPOTENCY_KEY_HEADER, idempotency_key_adapter)
    body = parsed.model
    if errors or body is None:
        raise RequestValidationError([*errors, *parsed.errors])
    state = app_state(request)
    if body.is_raw_card and not state["settings"].api.allow_raw_card:
        raise RawCardInputDisabled("card numbers are not accepted here; pay with Accept.js opaque data")
    command = PayCommand(
        order_id=body.order_id,
        payment_method=body.payment_method(today=datetime.now(UTC).date()),
        customer_id=body.customer_id,
        amount=body.amount,
    )
    result = await state["payments"].pay(
        command, customer_id=principal.customer_id, idempotency_key=idempotency_key, render=render_pay_response
    )
    status = result.response.status_code
    headers: dict[str, str] = {}
    if status == 201 and result.payment_id is not None:
        headers["Location"] = f"/payments/{result.payment_id}"
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    media_type = JSON if status < 300 else PROBLEM_JSON
    return Response(result.response.body, status_code=status, media_type=media_type, headers=headers)


@router.get(
    "/{payment_id}",
    summary="One payment (its owner or an admin)",
    response_class=Response,
    responses={200: {"model": PaymentResponse}, 404: {"model": ProblemResponse}},
)
async def get_payment(payment_id: PaymentIdPath, principal: CurrentCustomer, service: PaymentServiceDep) -> Response:
    payment = await service.get(payment_id, customer_id=principal.customer_id, is_admin=principal.is_admin)
    return Response(payment_body(payment), media_type=JSON)


@router.get(
    "",
    summary="The payments of an order, oldest first (its owner or an admin)",
    response_class=Response,
    responses={200: {"model": list[PaymentResponse]}, 404: {"model": ProblemResponse}},
)
async def list_payments(
    order_id: Annotated[str, Query(min_length=1, max_length=64, pattern=ID_PATTERN)],
    principal: CurrentCustomer,
    service: PaymentServiceDep,
) -> Response:
    found = await service.list_for_order(order_id, customer_id=principal.customer_id, is_admin=principal.is_admin)
    return Response(orjson.dumps([payment_dict(p) for p in found]), media_type=JSON)
