"""Routes for payment records."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from reference_db_service.api.dependencies import database, invalid_input, json_response
from reference_db_service.errors import PaymentNotFound
from reference_db_service.rules import PaymentWrite
from reference_db_service.schemas import (
    PaymentPutRequest,
    PaymentRecord,
    is_payment_id,
    parse_numeric_id,
)
from reference_db_service.store import payments
from reference_db_service.store.database import Database

router = APIRouter()

_PAYMENT_ID_RULE = "must be 1-128 characters of letters, digits and _ . : - (e.g. pay_01J…)"


@router.put(
    "/payments/{payment_id}",
    response_model=PaymentRecord,
    responses={201: {"model": PaymentRecord, "description": "created"}},
)
async def put_payment(request: Request, payment_id: str, body: PaymentPutRequest) -> Response:
    """Upsert a payment record, guarded by `version`.

    201 when created; 200 when updated, or unchanged because the stored version is the same or
    newer (the stored record is returned). An approved payment marks its order paid in the same
    transaction. 422 for an unknown order (a permanent error).
    """
    return await payment_put_reply(database(request), payment_id, body)


async def payment_put_reply(db: Database, payment_id: str, body: PaymentPutRequest) -> Response:
    """`PUT /payments/{payment_id}`, also answered by `HotPathMiddleware`."""
    if not is_payment_id(payment_id):
        raise invalid_input("path", "payment_id", message=_PAYMENT_ID_RULE)
    if body.id is not None and body.id != payment_id:
        raise invalid_input("body", "id", message="must equal the payment id in the path")
    record, decision = await payments.put_payment(db, payment_id, body)
    created = decision is PaymentWrite.CREATE
    return json_response(
        record,
        status_code=201 if created else 200,
        headers={"Location": f"/payments/{payment_id}"} if created else None,
    )


@router.get("/payments/{payment_id}", response_model=PaymentRecord)
async def get_payment(request: Request, payment_id: str) -> Response:
    if not is_payment_id(payment_id):
        msg = f"payment {payment_id!r} does not exist"
        raise PaymentNotFound(msg)
    return json_response(await payments.read_payment(database(request), payment_id))


@router.get("/payments", response_model=list[PaymentRecord])
async def list_payments(
    request: Request, order_id: Annotated[str, Query(description="the order's id, e.g. 1001")]
) -> Response:
    try:
        numeric_id = parse_numeric_id(order_id)
    except ValueError as exc:
        raise invalid_input("query", "order_id", message=str(exc)) from None
    return json_response(await payments.list_payments(database(request), numeric_id))
