"""An approved charge's order is told, or its refused charge given back, even after a crash or an outage.

Against the simulator and the reference db-service over HTTP, with the SQLite store. The pay flow is
stopped at the boundary between storing the approval and telling the order (a crash there, or the
db-service going down); a sweep of a fresh service instance then finishes the work, once.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from payment_service.domain.payments import Payment
from payment_service.resources import Resources
from payment_service.services.order_updates import OrderUpdateSweep, SweepResult
from payment_service.services.payments import PaymentService
from payment_service.settings import ReconcilerSettings, Settings
from tests.integration.conftest import Shop, card_body, store_rows
from tests.support.refunds import outbox_types, refund_reconciler, refund_service
from tests.support.simulator import ManualClock, SimulatorHandle

SWEEP = ReconcilerSettings(
    interval_s=10, max_backoff_s=60, not_found_grace_s=60, order_update_grace_s=60, reversal_attempts=3
)
# Past the grace after an approval made now; after an attempt, past the grace and any backoff.
LATER = timedelta(seconds=SWEEP.order_update_grace_s + SWEEP.max_backoff_s + 1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC) + LATER)


def fresh_sweep(resources: Resources, clock: ManualClock) -> OrderUpdateSweep:
    """The sweep of another process than the one that took the charge (a worker, after a restart)."""
    return OrderUpdateSweep(
        database=resources.database,
        db_service=resources.db_service,
        refunds=refund_service(resources),
        settings=SWEEP,
        clock=clock,
    )


def at_the_boundary(monkeypatch: pytest.MonkeyPatch, happens: Callable[[], None]) -> None:
    """Run `happens` once the approval is stored and before the order is told; then go on as usual."""
    tell = PaymentService._update_order

    async def boundary(self: PaymentService, payment: Payment) -> Payment:
        happens()
        return await tell(self, payment)

    monkeypatch.setattr(PaymentService, "_update_order", boundary)


def dies() -> None:
    raise RuntimeError("the process died here")


def due(settings: Settings) -> list[tuple[Any, ...]]:
    return store_rows(settings, "SELECT payment_id, attempts FROM order_updates_due")


def stored_refunds(settings: Settings, payment_id: str) -> list[tuple[Any, ...]]:
    return store_rows(
        settings,
        "SELECT kind, amount, status, origin FROM refunds WHERE payment_id = ? ORDER BY created_at",
        payment_id,
    )


def left_for_a_person() -> float:
    labels = {"reason": "order_cancelled", "result": "left_for_a_person"}
    return REGISTRY.get_sample_value("payment_service_charge_reversals_total", labels) or 0.0


async def approved_then_crashed(
    api_client: httpx.AsyncClient, shop: Shop, service_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """A charge approved and stored, the process dead before the order heard of it; (order id, payment id)."""
    customer = shop.customer()
    order_id = str(shop.order(customer, price="100.00", quantity=1)["id"])
    at_the_boundary(monkeypatch, dies)
    died = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
    assert died.status_code == 500, died.text
    monkeypatch.undo()
    ((payment_id, status),) = store_rows(
        service_settings, "SELECT payment_id, status FROM payments WHERE order_id = ?", order_id
    )
    assert status == "approved"
    return order_id, payment_id


class TestCrashBeforeTellingTheOrder:
    async def test_a_charge_approved_for_an_order_cancelled_after_the_crash_is_voided_once_by_a_fresh_sweep(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        clock: ManualClock,
    ) -> None:
        order_id, payment_id = await approved_then_crashed(api_client, shop, service_settings, monkeypatch)
        with shop.db.client() as db:
            assert db.post(f"/orders/{order_id}/cancel").json()["status"] == "cancelled"

        first = await fresh_sweep(resources, clock).sweep_once()
        clock.advance(seconds=LATER.total_seconds())
        second = await fresh_sweep(resources, clock).sweep_once()

        assert first == {payment_id: SweepResult.GIVEN_BACK}
        assert second == {}
        (charge,) = simulator.transactions(invoice_number=order_id)
        assert charge["status"] == "voided"
        assert stored_refunds(service_settings, payment_id) == [("void", "100.00", "succeeded", "automatic")]
        assert outbox_types(service_settings, order_id) == [
            "payment.approved",
            "order.paid",
            "payment.voided",
            "order.refunded",
        ]
        assert due(service_settings) == []

    async def test_a_sweep_before_the_grace_leaves_the_approval_to_the_flow_that_made_it(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        resources: Resources,
        service_settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        _, payment_id = await approved_then_crashed(api_client, shop, service_settings, monkeypatch)

        early = await fresh_sweep(resources, ManualClock(datetime.now(UTC))).sweep_once()

        assert early == {}
        assert due(service_settings) == [(payment_id, 0)]


class TestDbServiceDownDuringTheOrderUpdate:
    async def test_the_order_is_updated_by_the_sweep_once_the_db_service_is_back_and_nothing_is_given_back(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        clock: ManualClock,
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer, price="100.00", quantity=1)["id"])
        at_the_boundary(monkeypatch, shop.db.stop)
        try:
            response = await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
            assert (response.status_code, response.json()["status"]) == (201, "approved"), response.text
            payment_id = response.json()["id"]
            while_down = await fresh_sweep(resources, clock).sweep_once()
        finally:
            shop.db.start()
        pending = shop.db.get_order(order_id)
        clock.advance(seconds=LATER.total_seconds())

        back = await fresh_sweep(resources, clock).sweep_once()

        assert while_down == {payment_id: SweepResult.RETRY}
        assert pending is not None
        assert pending["status"] == "pending"
        assert back == {payment_id: SweepResult.UPDATED}
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_id"]) == ("paid", payment_id)
        (charge,) = simulator.transactions(invoice_number=order_id)
        assert charge["status"] == "capturedPendingSettlement"
        assert stored_refunds(service_settings, payment_id) == []
        assert due(service_settings) == []


class TestReversalThatKeepsFailing:
    async def test_a_refused_charge_whose_void_always_fails_is_left_for_a_person_once_and_not_tried_again(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
        clock: ManualClock,
    ) -> None:
        order_id, payment_id = await approved_then_crashed(api_client, shop, service_settings, monkeypatch)
        with shop.db.client() as db:
            assert db.post(f"/orders/{order_id}/cancel").json()["status"] == "cancelled"
        left = left_for_a_person()
        simulator.add_fault("system_error", count=10)  # every void is answered E00001 (unknown) and never made

        passes = []
        for _ in range(SWEEP.reversal_attempts + 2):
            passes.append(await fresh_sweep(resources, clock).sweep_once())
            clock.advance(seconds=LATER.total_seconds())
            # The worker's refund reconciler settles each void, unanswered, as never made.
            await refund_reconciler(resources, SWEEP, clock).reconcile_once()

        tried = [SweepResult.RETRY] * SWEEP.reversal_attempts
        assert [p.get(payment_id) for p in passes] == [*tried, SweepResult.LEFT_FOR_A_PERSON, None]
        assert left_for_a_person() == left + 1
        (charge,) = simulator.transactions(invoice_number=order_id)
        assert charge["status"] == "capturedPendingSettlement"  # the money is still taken: a person gives it back
        assert stored_refunds(service_settings, payment_id) == [("void", "100.00", "failed", "automatic")] * 3
        assert due(service_settings) == []


@pytest.fixture(autouse=True)
def _db_service_running(shop: Shop) -> Iterator[None]:
    yield
    shop.db.start()
