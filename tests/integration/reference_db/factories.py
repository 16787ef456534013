"""Typed builders of request bodies for the reference db-service tests."""

from typing import Any


def payment_body(order_id: str, customer_id: str, *, version: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "status": "approved",
        "amount": "59.97",
        "currency": "USD",
        "gateway": {
            "name": "authorize.net",
            "transaction_id": "80012345678",
            "auth_code": "QW7T2K",
            "response_code": "1",
            "reason_code": "1",
            "message": "This transaction has been approved.",
            "avs_result": "Y",
            "cvv_result": "M",
            "account_number": "XXXX1111",
            "account_type": "Visa",
        },
        "created_at": "2025-01-02T03:04:05.123456Z",
        "updated_at": "2025-01-02T03:04:06Z",
        "version": version,
    }
    return body | overrides
