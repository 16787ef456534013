"""Routes for orders."""

from fastapi import APIRouter, Request, Response, status

from reference_db_service.api.dependencies import database, json_response, numeric_id_or
from reference_db_service.errors import OrderNotFound
from reference_db_service.schemas import (
    OrderCreateRequest,
    OrderPaymentUpdateRequest,
    OrderRecord,
)
from reference_db_service.store import orders
from reference_db_service.store.database import Database

router = APIRouter()


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderRecord)
async def create_order(request: Request, body: OrderCreateRequest) -> Response:
    record = await orders.create_order(database(request), body)
    return json_response(record, status_code=201, headers={"Location": f"/orders/{record.id}"})


@router.get("/orders/{order_id}", response_model=OrderRecord)
async def get_order(request: Request, order_id: str) -> Response:
    return await order_reply(database(request), order_id)


async def order_reply(db: Database, order_id: str) -> Response:
    """`GET /orders/{order_id}`, also answered by `HotPathMiddleware`."""
    numeric_id = numeric_id_or(OrderNotFound, order_id, "order")
    return json_response(await orders.read_order(db, numeric_id))


@router.patch("/orders/{order_id}", response_model=OrderRecord)
async def update_order_payment(request: Request, order_id: str, body: OrderPaymentUpdateRequest) -> Response:
    """Record the order's payment status; idempotent, and a stale update changes nothing.

    `approved` marks the order paid. 409 for an approval of a cancelled order or of an order that
    another payment has paid.
    """
    return await order_payment_reply(database(request), order_id, body)


async def order_payment_reply(db: Database, order_id: str, body: OrderPaymentUpdateRequest) -> Response:
    """`PATCH /orders/{order_id}`, also answered by `HotPathMiddleware`."""
    numeric_id = numeric_id_or(OrderNotFound, order_id, "order")
    return json_response(await orders.update_order_payment(db, numeric_id, body))


@router.post("/orders/{order_id}/cancel", response_model=OrderRecord)
async def cancel_order(request: Request, order_id: str) -> Response:
    """Cancel a pending order (idempotent); 409 when it is paid."""
    numeric_id = numeric_id_or(OrderNotFound, order_id, "order")
    return json_response(await orders.cancel_order(database(request), numeric_id))
