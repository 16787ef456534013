"""Routes for customers and products."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from reference_db_service.api.dependencies import database, invalid_input, json_response, numeric_id_or
from reference_db_service.errors import CustomerNotFound
from reference_db_service.schemas import (
    CustomerCreateRequest,
    CustomerRecord,
    ProductCreateRequest,
    ProductRecord,
    parse_numeric_id,
)
from reference_db_service.store import customers, products
from reference_db_service.store.database import Database

MAX_PRODUCT_IDS = 100

router = APIRouter()


@router.post("/customers", status_code=status.HTTP_201_CREATED, response_model=CustomerRecord)
async def create_customer(request: Request, body: CustomerCreateRequest) -> Response:
    record = await customers.create_customer(database(request), body)
    return json_response(record, status_code=201, headers={"Location": f"/customers/{record.id}"})


@router.get("/customers/{customer_id}", response_model=CustomerRecord)
async def get_customer(request: Request, customer_id: str) -> Response:
    return await customer_reply(database(request), customer_id)


async def customer_reply(db: Database, customer_id: str) -> Response:
    """`GET /customers/{customer_id}`, also answered by `HotPathMiddleware`."""
    numeric_id = numeric_id_or(CustomerNotFound, customer_id, "customer")
    return json_response(await customers.read_customer(db, numeric_id))


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductRecord)
async def create_product(request: Request, body: ProductCreateRequest) -> Response:
    record = await products.create_product(database(request), body)
    return json_response(record, status_code=201, headers={"Location": f"/products/{record.id}"})


def _product_ids(ids: str) -> list[int]:
    parts = [part.strip() for part in ids.split(",") if part.strip()]
    if not parts or len(parts) > MAX_PRODUCT_IDS:
        msg = f"ids must list 1 to {MAX_PRODUCT_IDS} product ids, comma-separated"
        raise ValueError(msg)
    return sorted({parse_numeric_id(part) for part in parts})


@router.get("/products", response_model=list[ProductRecord])
async def list_products(
    request: Request,
    ids: Annotated[str, Query(description="comma-separated product ids, e.g. 1,2,3 (at most 100)")],
) -> Response:
    return await products_reply(database(request), ids)


async def products_reply(db: Database, ids: str) -> Response:
    """`GET /products?ids=…`, also answered by `HotPathMiddleware`."""
    try:
        product_ids = _product_ids(ids)
    except ValueError as exc:
        raise invalid_input("query", "ids", message=str(exc)) from None
    return json_response(await products.list_products(db, product_ids))
