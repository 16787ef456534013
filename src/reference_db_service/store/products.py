"""Products: create and list by ids."""

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from reference_db_service.errors import AlreadyExists
from reference_db_service.money import format_cents, to_cents
from reference_db_service.schemas import ProductCreateRequest, ProductRecord
from reference_db_service.store.database import Database, advance_id_sequence
from reference_db_service.store.statements import Statement
from reference_db_service.store.tables import products

# One statement per number of ids (at most the API's limit), each compiled once.
_SELECT_BY_IDS: dict[int, Statement] = {}


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
    statement = _SELECT_BY_IDS.get(len(product_ids)) or _select_by_ids(len(product_ids))
    params = {f"b_id_{n}": product_id for n, product_id in enumerate(product_ids)}
    return [product_record(row) for row in statement.rows(conn, params)]


def _select_by_ids(count: int) -> Statement:
    ids = [bindparam(f"b_id_{n}", type_=products.c.id.type) for n in range(count)]
    statement = _SELECT_BY_IDS[count] = Statement(
        select(products).where(products.c.id.in_(ids)).order_by(products.c.id)
    )
    return statement


def product_record(row: Any) -> ProductRecord:
    return ProductRecord(id=str(row.id), name=row.name, sku=row.sku, price=format_cents(row.price_cents))
