"""Errors the reference db-service raises on purpose.

```
ReferenceDbError
├── Unauthorized                      missing or wrong bearer token
├── NotFound
│   ├── CustomerNotFound, OrderNotFound, PaymentNotFound
├── InvalidReference                  the body names something that does not fit (a permanent error)
│   ├── UnknownCustomer, UnknownProduct, UnknownOrder
│   ├── CustomerMismatch              payment's customer is not the order's customer
│   └── PaymentOrderMismatch          a payment id already recorded for another order
└── Conflict
    ├── AlreadyExists                 explicit id already taken
    ├── OrderCancelled                approval for a cancelled order
    ├── OrderAlreadyPaid              approval by another payment, or cancelling a paid order
    └── PaymentConflict               the same new payment id written for two orders at once
DatabaseBusy                          another process held SQLite's write lock too long (retriable)
```
Errors carry a stable `code`; `api/problems.py` maps classes to HTTP statuses.
"""

from typing import ClassVar


class ReferenceDbError(Exception):
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(ReferenceDbError):
    code = "unauthorized"


class NotFound(ReferenceDbError):
    code = "not_found"


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class OrderNotFound(NotFound):
    code = "order_not_found"


class PaymentNotFound(NotFound):
    code = "payment_not_found"


class InvalidReference(ReferenceDbError):
    code = "invalid_reference"


class UnknownCustomer(InvalidReference):
    code = "unknown_customer"


class UnknownProduct(InvalidReference):
    code = "unknown_product"


class UnknownOrder(InvalidReference):
    code = "unknown_order"


class CustomerMismatch(InvalidReference):
    code = "customer_mismatch"


class PaymentOrderMismatch(InvalidReference):
    code = "payment_order_mismatch"


class Conflict(ReferenceDbError):
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class OrderCancelled(Conflict):
    code = "order_cancelled"


class OrderAlreadyPaid(Conflict):
    code = "order_already_paid"


class PaymentConflict(Conflict):
    code = "payment_conflict"


class DatabaseBusy(ReferenceDbError):
    code = "database_busy"
