"""JSON models of the db-service's replies (DESIGN §6), and their conversion to domain types.

These models ignore unknown fields, since the db-service is someone else's; ids are strings on the wire,
but a numeric id is accepted and turned into one. Nothing outside `db_service/` imports this module.
"""

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, TypeAdapter

from payment_service.domain.money import BoundedDecimal
from payment_service.domain.orders import Address, Customer, Order, OrderItem, Product


def _id_text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


WireId = Annotated[str, BeforeValidator(_id_text)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderItemWire(WireModel):
    product_id: WireId
    quantity: int
    unit_price: BoundedDecimal


class OrderWire(WireModel):
    id: WireId
    customer_id: WireId
    status: str
    payment_status: str = "unpaid"
    currency: str = "USD"
    items: list[OrderItemWire]
    shipping_amount: BoundedDecimal | None = None
    tax_amount: BoundedDecimal | None = None
    payment_id: WireId | None = None

    def to_domain(self) -> Order:
        return Order(
            order_id=self.id,
            customer_id=self.customer_id,
            status=self.status,
            payment_status=self.payment_status,
            currency=self.currency,
            items=tuple(OrderItem(i.product_id, i.quantity, i.unit_price) for i in self.items),
            shipping_amount=self.shipping_amount,
            tax_amount=self.tax_amount,
            payment_id=self.payment_id,
        )


class AddressWire(WireModel):
    line1: str
    line2: str | None = None
    city: str
    state: str
    zip: str
    country: str


class CustomerWire(WireModel):
    id: WireId
    email: str
    first_name: str
    last_name: str
    phone: str | None = None
    address: AddressWire

    def to_domain(self) -> Customer:
        a = self.address
        return Customer(
            customer_id=self.id,
            email=self.email,
            first_name=self.first_name,
            last_name=self.last_name,
            address=Address(line1=a.line1, line2=a.line2, city=a.city, state=a.state, zip=a.zip, country=a.country),
            phone=self.phone,
        )


class ProductWire(WireModel):
    id: WireId
    name: str
    sku: str | None = None
    price: BoundedDecimal

    def to_domain(self) -> Product:
        return Product(product_id=self.id, name=self.name, price=self.price, sku=self.sku)


# `GET /products?ids=` answers a bare JSON list.
product_list_adapter: TypeAdapter[list[ProductWire]] = TypeAdapter(list[ProductWire])


class OrderPaymentPatchWire(BaseModel):
    payment_status: str
    payment_id: str
