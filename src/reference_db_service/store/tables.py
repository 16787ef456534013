"""SQLAlchemy Core tables.

Created on start with `metadata.create_all`, without migrations: the reference db-service holds demo
and test data, and a schema change means a fresh database file.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetimes are not stored"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            msg = f"expected a datetime, got {type(value).__name__}"
            raise TypeError(msg)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(255), nullable=False),
    Column("first_name", String(50), nullable=False),
    Column("last_name", String(50), nullable=False),
    Column("phone", String(25)),
    Column("line1", String(60), nullable=False),
    Column("line2", String(60)),
    Column("city", String(40), nullable=False),
    Column("state", String(40), nullable=False),
    Column("zip", String(20), nullable=False),
    Column("country", String(60), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("sku", String(64)),
    Column("price_cents", BigInteger, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", Integer, ForeignKey("customers.id"), nullable=False),
    Column("status", String(32), nullable=False),
    Column("payment_status", String(32), nullable=False),
    # No foreign key: PATCH /orders may name a payment this service has not seen (yet).
    Column("payment_id", String(128)),
    Column("currency", String(3), nullable=False),
    Column("shipping_cents", BigInteger),
    Column("tax_cents", BigInteger),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", Integer, ForeignKey("orders.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_id", Integer, ForeignKey("products.id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False),
    Column("customer_id", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    # In the currency's minor unit (yen, cents, fils: `money.py`).
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("refunded_minor", BigInteger),  # null until a refund or void
    Column("gateway", JSON),
    Column("version", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_payments_order_id", "order_id"),
)
