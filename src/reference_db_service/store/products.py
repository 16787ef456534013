"""Products: create and list by ids."""

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from reference_db_service.errors import AlreadyExists
from reference_db_service.money import format_cents, to_cents
from reference_db_service.schemas import ProductCreateRequest, ProductRecord
from reference_db_service.store.database import Database, advance_id_sequence
from reference_db_service.store.tables import products

_SELECT_BY_IDS = select(products).where(products.c.id.in_(bindparam("b_ids", expanding=True))).order_by(products.c.id)


async def create_product(db: Database, request: ProductCreateRequest) -> ProductRecord:
    """Insert a product, with the explicit id when one is given.

    Raises:
        AlreadyExists: the explicit id is taken.
    """
    values: dict[str, object] = {
        "name": request.name,
        "sku": request.sku,
        "price_cents": to_cents(request.price),
    }
    if request.id is not None:
        values["id"] = request.id
    try:
        return await db.write(_insert_product, values)
    except IntegrityError as exc:
        msg = f"product {request.id} already exists"
        raise AlreadyExists(msg) from exc


def _insert_product(conn: Connection, values: dict[str, object]) -> ProductRecord:
    row = conn.execute(insert(products).values(values).returning(*products.c)).one()
    if "id" in values:
        advance_id_sequence(conn, products.name)
    return product_record(row)


async def list_products(db: Database, product_ids: Collection[int]) -> list[ProductRecord]:
    """The products among `product_ids`, by id; unknown ids are simply absent."""
    if not product_ids:
        return []
    return await db.read(_select_products, product_ids)


def _select_products(conn: Connection, product_ids: Collection[int]) -> list[ProductRecord]:
    return [product_record(row) for row in conn.execute(_SELECT_BY_IDS, {"b_ids": list(product_ids)})]


def product_record(row: Row[Any]) -> ProductRecord:
    m = row._mapping
    return ProductRecord(id=str(m["id"]), name=m["name"], sku=m["sku"], price=format_cents(m["price_cents"]))
