"""Customers: create and read."""

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from reference_db_service.errors import AlreadyExists, CustomerNotFound
from reference_db_service.schemas import AddressRecord, CustomerCreateRequest, CustomerRecord
from reference_db_service.store.database import Database, advance_id_sequence
from reference_db_service.store.statements import Statement
from reference_db_service.store.tables import customers

_SELECT_ONE = Statement(select(customers).where(customers.c.id == bindparam("b_customer_id")))


async def create_customer(db: Database, request: CustomerCreateRequest) -> CustomerRecord:
    """Insert a customer, with the explicit id when one is given.

    Raises:
        AlreadyExists: the explicit id is taken.
    """
    address = request.address
    values: dict[str, object] = {
        "email": request.email,
        "first_name": request.first_name,
        "last_name": request.last_name,
        "phone": request.phone,
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "state": address.state,
        "zip": address.zip,
        "country": address.country,
    }
    if request.id is not None:
        values["id"] = request.id
    try:
        return await db.write(_insert_customer, values)
    except IntegrityError as exc:
        msg = f"customer {request.id} already exists"
        raise AlreadyExists(msg) from exc


def _insert_customer(conn: Connection, values: dict[str, object]) -> CustomerRecord:
    row = conn.execute(insert(customers).values(values).returning(*customers.c)).one()
    if "id" in values:
        advance_id_sequence(conn, customers.name)
    return customer_record(row)


async def read_customer(db: Database, customer_id: int) -> CustomerRecord:
    """Raises: CustomerNotFound."""
    row = await db.read(_select_customer, customer_id)
    if row is None:
        msg = f"customer {customer_id} does not exist"
        raise CustomerNotFound(msg)
    return customer_record(row)


def _select_customer(conn: Connection, customer_id: int) -> Any | None:
    return _SELECT_ONE.first(conn, {"b_customer_id": customer_id})


def customer_record(row: Any) -> CustomerRecord:
    return CustomerRecord(
        id=str(row.id),
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        phone=row.phone,
        address=AddressRecord(
            line1=row.line1,
            line2=row.line2,
            city=row.city,
            state=row.state,
            zip=row.zip,
            country=row.country,
        ),
    )
