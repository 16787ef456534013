"""Orders, customers and products as the payment service sees them, and the rules that price an order.

The amount to charge always comes from `amount_due(order)`, computed here from the order's lines;
an amount sent by a client is only ever compared with it.
"""

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from payment_service.domain.errors import (
    AmountPrecisionExceeded,
    CurrencyNotAccepted,
    DbServiceDataInvalid,
    OrderNotFound,
    OrderNotPayable,
)
from payment_service.domain.money import Money, fits_minor_unit


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class OrderItem:
    product_id: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer_id: str
    status: str
    payment_status: str
    currency: str
    items: tuple[OrderItem, ...]
    shipping_amount: Decimal | None = None
    tax_amount: Decimal | None = None
    payment_id: str | None = None  # the payment the order's payment status was last set from


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    state: str
    zip: str
    country: str
    line2: str | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    email: str
    first_name: str
    last_name: str
    address: Address
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    name: str
    price: Decimal
    sku: str | None = None


def amount_due(order: Order) -> Money:
    """Items times unit price, plus shipping and tax when present, in the order's currency; never rounded.

    Raises:
        DbServiceDataInvalid: a negative unit price, shipping or tax amount (the db-service should never hold one).
        AmountPrecisionExceeded: an amount with more decimals than the currency's minor unit.
    """
    amounts = [amount for amount in (order.shipping_amount, order.tax_amount) if amount is not None]
    amounts += [item.unit_price for item in order.items]
    if any(not amount.is_finite() or amount < 0 for amount in amounts):
        raise DbServiceDataInvalid(f"order {order.order_id} has a negative or invalid price, shipping or tax amount")
    if not all(fits_minor_unit(amount, order.currency) for amount in amounts):
        raise AmountPrecisionExceeded(order.order_id, f"an amount has more decimals than {order.currency} has")
    total = sum((item.unit_price * item.quantity for item in order.items), Decimal(0))
    total += order.shipping_amount or Decimal(0)
    total += order.tax_amount or Decimal(0)
    return Money(total, order.currency)


def ensure_owned(order: Order, *, customer_id: str) -> None:
    # Someone else's order is reported exactly like a missing one, so ids cannot be probed.
    if order.customer_id != customer_id:
        raise OrderNotFound(order.order_id)


def ensure_payable(
    order: Order, *, customer_id: str, accepted_currencies: AbstractSet[str] = frozenset({"USD"})
) -> None:
    """Raise unless `customer_id` may pay `order` now.

    Raises:
        OrderNotFound: the order belongs to another customer.
        OrderNotPayable: the order is paid, cancelled, has no lines or nothing to pay.
        CurrencyNotAccepted: the order's currency is not in `accepted_currencies`.
        AmountPrecisionExceeded, DbServiceDataInvalid: as `amount_due`.
    """
    ensure_owned(order, customer_id=customer_id)
    if order.status == OrderStatus.CANCELLED:
        raise OrderNotPayable(order.order_id, "order is cancelled")
    if order.status == OrderStatus.PAID or order.payment_status == "approved":
        raise OrderNotPayable(order.order_id, "order is already paid")
    if order.status != OrderStatus.PENDING:
        raise OrderNotPayable(order.order_id, f"order status is {order.status}")
    if not order.items or any(item.quantity < 1 for item in order.items):
        raise OrderNotPayable(order.order_id, "order has no payable lines")
    if order.currency not in accepted_currencies:
        raise CurrencyNotAccepted(order.order_id, f"{order.currency} is not a currency this merchant account takes")
    if not amount_due(order).is_positive():
        raise OrderNotPayable(order.order_id, "order total is not positive")
