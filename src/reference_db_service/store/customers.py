"""Customers: create and read."""

from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from reference_db_service.errors import AlreadyExists, CustomerNotFound
from reference_db_service.schemas import AddressRecord, CustomerCreateRequest, CustomerRecord
from reference_db_service.store.database import Database, advance_id_sequence
from reference_db_service.store.tables import customers

_SELECT_ONE = select(customers).where(customers.c.id == bindparam("b_customer_id"))


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


def _select_customer(conn: Connection, customer_id: int) -> Row[Any] | None:
    return conn.execute(_SELECT_ONE, {"b_customer_id": customer_id}).first()


def customer_record(row: Row[Any]) -> CustomerRecord:
    m = row._mapping
    return CustomerRecord(
        id=str(m["id"]),
        email=m["email"],
        first_name=m["first_name"],
        last_name=m["last_name"],
        phone=m["phone"],
        address=AddressRecord(
            line1=m["line1"],
            line2=m["line2"],
            city=m["city"],
            state=m["state"],
            zip=m["zip"],
            country=m["country"],
        ),
    )
