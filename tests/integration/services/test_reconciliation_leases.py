"""Two workers' reconcilers on one store split the unknown payments: one gateway search per payment.

Stalled charges are made through the API (the simulator commits each charge, then stalls its answer past
the client's read timeout), so the payments are `unknown` exactly as production leaves them; the
reconcilers are two `Resources` (engine, gateway client, db-service client) on the same store, as two
worker processes would have. Gateway calls are counted at the simulator (`/_sim/requests`).
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from payment_service.api.app import create_app
from payment_service.domain.payments import PaymentStatus
from payment_service.resources import Resources, open_resources
from payment_service.services.reconciliation import Reconciler, ReconcileResult
from payment_service.settings import ReconcilerSettings, Settings
from tests.integration.conftest import Shop, app_client, card_body, short_read, store_rows
from tests.support.simulator import SimulatorHandle

STALLED = 20
SEARCH = "getUnsettledTransactionListRequest"


def searches(simulator: SimulatorHandle) -> int:
    return sum(SEARCH in str(request["body"]) for request in simulator.requests())


@pytest.fixture
async def two_workers(service_settings: Settings) -> AsyncIterator[tuple[Resources, Resources]]:
    async with open_resources(service_settings) as first, open_resources(service_settings) as second:
        yield first, second


async def stalled_payments(settings: Settings, shop: Shop, simulator: SimulatorHandle) -> list[str]:
    """Payment ids of `STALLED` orders charged at the gateway whose answers never came back."""
    orders = []
    for _ in range(STALLED):
        customer = shop.customer()
        orders.append((customer, str(shop.order(customer)["id"])))
    simulator.add_fault("stall_after_commit", stall_s=5, count=STALLED)
    async with app_client(create_app(short_read(settings))) as client:
        responses = await asyncio.gather(
            *(
                client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
                for customer, order_id in orders
            )
        )
    assert [response.status_code for response in responses] == [202] * STALLED
    assert {response.json()["status"] for response in responses} == {"unknown"}
    return [response.json()["id"] for response in responses]


async def test_two_reconcilers_search_the_gateway_once_per_unknown_payment(
    service_settings: Settings, shop: Shop, simulator: SimulatorHandle, two_workers: tuple[Resources, Resources]
) -> None:
    payment_ids = await stalled_payments(service_settings, shop, simulator)
    settings = ReconcilerSettings(interval_s=0.01, processing_grace_s=60, not_found_grace_s=600)
    reconcilers = [
        Reconciler(database=r.database, gateway=r.gateway, db_service=r.db_service, settings=settings)
        for r in two_workers
    ]
    before = searches(simulator)

    reports = await asyncio.gather(*(reconciler.reconcile_once() for reconciler in reconcilers))

    assert searches(simulator) - before == STALLED
    looked_at = [set(report.results) for report in reports]
    assert looked_at[0].isdisjoint(looked_at[1])
    assert looked_at[0] | looked_at[1] == set(payment_ids)
    results = {result for report in reports for result in report.results.values()}
    assert results == {ReconcileResult.ADOPTED}
    statuses = store_rows(service_settings, "SELECT DISTINCT status FROM payments")
    assert statuses == [(PaymentStatus.APPROVED.value,)]
    # Leases are given back at the end of the round: nothing is held once both are done.
    assert store_rows(service_settings, "SELECT count(*) FROM reconciliation_leases") == [(0,)]
