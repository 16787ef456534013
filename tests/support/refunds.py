"""Steps shared by the refund tests: a paid order, an unknown charge of a cancelled order, and what the
simulator's ledger and the outbox show."""

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from payment_service.api.app import create_app
from payment_service.resources import Resources
from payment_service.services.refund_reconciliation import RefundReconciler
from payment_service.services.refunds import RefundService
from payment_service.settings import ReconcilerSettings, Settings
from tests.integration.conftest import Shop, app_client, card_body, short_read, store_rows
from tests.support.simulator import SimulatorHandle


async def paid(api_client: httpx.AsyncClient, shop: Shop, *, price: str = "100.00") -> dict[str, Any]:
    """An approved payment of `price` for a new customer's new one-item order, as the API answered it."""
    customer = shop.customer()
    order_id = str(shop.order(customer, price=price, quantity=1)["id"])
    response = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def unknown_charge_of_a_cancelled_order(
    settings: Settings, shop: Shop, simulator: SimulatorHandle
) -> tuple[str, str]:
    """Order and payment ids of a new order whose charge was made but answered `unknown` (stalled after commit),
    then cancelled."""
    customer = shop.customer()
    order_id = str(shop.order(customer)["id"])
    simulator.add_fault("stall_after_commit", stall_s=5)
    async with app_client(create_app(short_read(settings))) as client:
        response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
    assert response.json()["status"] == "unknown"
    with shop.db.client() as db:
        assert db.post(f"/orders/{order_id}/cancel").json()["status"] == "cancelled"
    return order_id, str(response.json()["id"])


def refunds_in_ledger(simulator: SimulatorHandle, transaction_id: str) -> list[Decimal]:
    """The amounts of the refunds of `transaction_id` in the simulator's ledger (voided ones left out), oldest first."""
    return [
        Decimal(t["amount"])
        for t in simulator.transactions()
        if t["type"] == "refundTransaction" and t["refTransId"] == transaction_id and t["status"] != "voided"
    ]


def outbox_types(settings: Settings, order_id: str) -> list[str]:
    rows = store_rows(settings, "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq", order_id)
    return [row[0] for row in rows]


def refund_service(resources: Resources) -> RefundService:
    """A `RefundService` over the opened resources, as the API and the worker build it."""
    return RefundService(
        database=resources.database, db_service=resources.db_service, gateway=resources.gateway, idempotency_ttl_s=60
    )


def refund_reconciler(
    resources: Resources, settings: ReconcilerSettings, clock: Callable[[], datetime] | None = None
) -> RefundReconciler:
    """A `RefundReconciler` over the opened resources, as the worker builds it."""
    return RefundReconciler(
        database=resources.database,
        gateway=resources.gateway,
        db_service=resources.db_service,
        refunds=refund_service(resources),
        settings=settings,
        clock=clock,
    )
