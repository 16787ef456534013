"""Demo data: customers 42 and 43, products 1-4, unpaid orders 1001-1011.

Order 1001 belongs to customer 42 and totals exactly 59.97 (3 x 19.99). Seeding is idempotent:
records are created with fixed ids and skipped when their id exists; existing records are never
changed (a paid demo order stays paid).
"""

from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from reference_db_service.errors import AlreadyExists
from reference_db_service.money import format_cents, to_cents
from reference_db_service.schemas import (
    Address,
    CustomerCreateRequest,
    OrderCreateRequest,
    OrderItemRequest,
    OrderRecord,
    ProductCreateRequest,
)
from reference_db_service.store import customers, orders, products
from reference_db_service.store.database import Database

DEMO_CUSTOMERS = (
    CustomerCreateRequest(
        id=42,
        email="jane.doe@example.com",
        first_name="Jane",
        last_name="Doe",
        phone="+1-217-555-0142",
        address=Address(
            line1="42 Main Street",
            line2="Apt 4B",
            city="Springfield",
            state="IL",
            zip="62701",
            country="US",
        ),
    ),
    CustomerCreateRequest(
        id=43,
        email="john.roe@example.com",
        first_name="John",
        last_name="Roe",
        address=Address(line1="7 Harbor Road", city="Portland", state="OR", zip="97201", country="US"),
    ),
)

DEMO_PRODUCTS = (
    ProductCreateRequest(id=1, name="Ceramic Mug", sku="MUG-001", price=Decimal("19.99")),
    ProductCreateRequest(id=2, name="Cotton T-Shirt", sku="TSH-002", price=Decimal("25.00")),
    ProductCreateRequest(id=3, name="Sticker Pack", sku="STK-003", price=Decimal("4.50")),
    ProductCreateRequest(id=4, name="Notebook", price=Decimal("12.75")),
)


def _order(
    order_id: int,
    customer_id: int,
    items: list[tuple[int, int]],
    *,
    shipping: str | None = None,
    tax: str | None = None,
) -> OrderCreateRequest:
    return OrderCreateRequest(
        id=order_id,
        customer_id=customer_id,
        items=[OrderItemRequest(product_id=p, quantity=q) for p, q in items],
        shipping_amount=None if shipping is None else Decimal(shipping),
        tax_amount=None if tax is None else Decimal(tax),
    )


DEMO_ORDERS = (
    _order(1001, 42, [(1, 3)]),  # 59.97: the order the README and the e2e tests pay
    _order(1002, 42, [(2, 1)]),
    _order(1003, 42, [(3, 2), (4, 1)]),
    _order(1004, 42, [(1, 1), (2, 2)], shipping="5.00", tax="5.60"),
    _order(1005, 42, [(4, 4)]),
    _order(1006, 42, [(1, 2), (3, 1)]),
    _order(1007, 42, [(2, 3)]),
    _order(1008, 42, [(3, 10)]),
    _order(1009, 42, [(1, 1), (2, 1), (3, 1), (4, 1)]),
    _order(1010, 42, [(4, 1)]),
    _order(1011, 43, [(2, 1), (4, 2)]),
)


@dataclass(frozen=True, slots=True)
class SeededRecord:
    kind: str  # customer, product or order
    record_id: str
    description: str
    amount: str | None  # product price or order total
    created: bool  # False when it already existed


async def seed_demo_data(db: Database) -> list[SeededRecord]:
    """Create the demo records that do not exist yet; report every demo record."""
    report: list[SeededRecord] = []
    for customer in DEMO_CUSTOMERS:
        created = await _create_once(customers.create_customer(db, customer))
        name = f"{customer.first_name} {customer.last_name} <{customer.email}>"
        report.append(SeededRecord("customer", str(customer.id), name, None, created))
    for product in DEMO_PRODUCTS:
        created = await _create_once(products.create_product(db, product))
        price = format_cents(to_cents(product.price))
        report.append(SeededRecord("product", str(product.id), product.name, price, created))
    for order in DEMO_ORDERS:
        created = await _create_once(orders.create_order(db, order))
        record = await orders.read_order(db, cast(int, order.id))
        description = f"customer {record.customer_id}, {record.status}/{record.payment_status}"
        report.append(SeededRecord("order", record.id, description, order_total(record), created))
    return report


def order_total(record: OrderRecord) -> str:
    cents = sum(to_cents(Decimal(item.unit_price)) * item.quantity for item in record.items)
    for extra in (record.shipping_amount, record.tax_amount):
        if extra is not None:
            cents += to_cents(Decimal(extra))
    return format_cents(cents)


async def _create_once(creation: Awaitable[object]) -> bool:
    try:
        await creation
    except AlreadyExists:
        return False
    return True
