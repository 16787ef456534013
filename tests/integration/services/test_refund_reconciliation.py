"""Refunds whose answer was lost, refunds a crash left behind, and charges an order could no longer take.

Against the real simulator (faults for lost answers, `/_sim/settle`) and the real reference db-service.
Time is a `ManualClock` where the grace periods matter.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from prometheus_client import REGISTRY

from payment_service.api.app import create_app
from payment_service.domain.money import Money
from payment_service.domain.refunds import Refund, RefundKind, RefundOrigin, RefundStatus
from payment_service.resources import Resources
from payment_service.services.reconciliation import Reconciler, ReconcileResult
from payment_service.services.refunds import new_refund_id
from payment_service.settings import ReconcilerSettings, Settings
from payment_service.store import refunds as refund_rows
from payment_service.worker.main import serve_worker
from tests.integration.conftest import Shop, app_client, card_body, short_read, store_rows
from tests.integration.reference_db.factories import payment_body
from tests.support.events import wait_until
from tests.support.refunds import (
    outbox_types,
    paid,
    refund_reconciler,
    refund_service,
    refunds_in_ledger,
    unknown_charge_of_a_cancelled_order,
)
from tests.support.simulator import ManualClock, SimulatorHandle

GRACE = ReconcilerSettings(interval_s=0.01, processing_grace_s=60, not_found_grace_s=600, max_backoff_s=0.04)
ADMIN = "staff-1"


def refund_statuses(settings: Settings, payment_id: str) -> list[tuple[str, str]]:
    return [
        (row[0], row[1])
        for row in store_rows(
            settings, "SELECT amount, status FROM refunds WHERE payment_id = ? ORDER BY created_at", payment_id
        )
    ]


class TestLostRefundAnswers:
    async def test_a_refund_whose_answer_was_lost_is_unknown_then_reconciled_with_one_refund_sent(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        charge_id = payment["gateway"]["transaction_id"]
        url = f"/payments/{payment['id']}/refunds"
        simulator.add_fault("stall_after_commit", stall_s=5)
        async with app_client(create_app(short_read(service_settings))) as impatient:
            lost = await impatient.post(
                url, json={"amount": "60.00"}, headers=shop.auth(ADMIN, roles=("admin",), key="lost-1")
            )
        assert lost.status_code == 202, lost.text
        assert lost.json()["status"] == "unknown"

        # A second request meanwhile: the unknown refund still counts as taken.
        second = await api_client.post(url, json={"amount": "60.00"}, headers=shop.auth(ADMIN, roles=("admin",)))
        assert second.status_code == 422

        settled = await refund_reconciler(resources, GRACE).reconcile_once()

        assert settled == {lost.json()["id"]: RefundStatus.SUCCEEDED}
        assert refunds_in_ledger(simulator, charge_id) == [Decimal("60.00")]
        assert refund_statuses(service_settings, payment["id"]) == [("60.00", "succeeded")]
        current = (
            await api_client.get(f"/payments/{payment['id']}", headers=shop.auth(ADMIN, roles=("admin",)))
        ).json()
        assert (current["status"], current["refunded_amount"]) == ("partially_refunded", "60.00")
        assert outbox_types(service_settings, payment["order_id"])[2:] == ["payment.refunded", "order.refunded"]
        # The same key now answers what the refund became.
        replay = await api_client.post(
            url, json={"amount": "60.00"}, headers=shop.auth(ADMIN, roles=("admin",), key="lost-1")
        )
        assert (replay.status_code, replay.json()["status"]) == (201, "succeeded")

    async def test_a_refund_a_crash_left_processing_fails_after_the_grace_and_frees_its_amount(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        written_at = datetime.now(UTC)
        refund_id = new_refund_id(written_at)
        crashed = Refund(
            refund_id=refund_id,
            payment_id=payment["id"],
            kind=RefundKind.REFUND,
            amount=Money(Decimal("100.00"), "USD"),
            status=RefundStatus.PROCESSING,
            origin=RefundOrigin.API,
            ref_id=refund_id.removeprefix("ref_"),
            created_at=written_at,
            updated_at=written_at,
        )
        async with resources.database.transaction() as conn:  # as the process left it, dying before sending
            await refund_rows.insert_refund(conn, crashed)
        url = f"/payments/{payment['id']}/refunds"
        blocked = await api_client.post(url, json={"amount": "1.00"}, headers=shop.auth(ADMIN, roles=("admin",)))
        clock = ManualClock(written_at + timedelta(seconds=120))
        reconciler = refund_reconciler(resources, GRACE, clock)

        within = await reconciler.reconcile_once()
        clock.advance(seconds=600)
        after = await reconciler.reconcile_once()
        freed = await api_client.post(url, json={"amount": "1.00"}, headers=shop.auth(ADMIN, roles=("admin",)))

        assert (blocked.status_code, blocked.json()["code"]) == (409, "nothing_left_to_refund")  # all taken meanwhile
        assert within == {}
        assert after == {refund_id: RefundStatus.FAILED}
        assert freed.status_code == 201
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("1.00")]

    async def test_a_refund_sent_but_never_recorded_is_found_by_its_ref_id_and_recorded_once(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        charge_id = payment["gateway"]["transaction_id"]
        written_at = datetime.now(UTC)
        refund_id = new_refund_id(written_at)
        ref_id = refund_id.removeprefix("ref_")
        left = Refund(
            refund_id=refund_id,
            payment_id=payment["id"],
            kind=RefundKind.REFUND,
            amount=Money(Decimal("45.00"), "USD"),
            status=RefundStatus.PROCESSING,
            origin=RefundOrigin.API,
            ref_id=ref_id,
            created_at=written_at,
            updated_at=written_at,
        )
        async with resources.database.transaction() as conn:
            await refund_rows.insert_refund(conn, left)
        # Sent as the service sends it, then the process died before recording the answer.
        sent = await resources.gateway.refund(
            charge_id, left.amount, card_last4="1111", ref_id=ref_id, invoice_number=ref_id
        )
        assert sent.result.transaction_id is not None
        reconciler = refund_reconciler(resources, GRACE, ManualClock(written_at + timedelta(seconds=120)))

        settled = await reconciler.reconcile_once()
        again = await reconciler.reconcile_once()

        assert settled == {refund_id: RefundStatus.SUCCEEDED}
        assert again == {}
        assert refunds_in_ledger(simulator, charge_id) == [Decimal("45.00")]
        assert store_rows(service_settings, "SELECT transaction_id, status FROM refunds") == [
            (sent.result.transaction_id, "succeeded")
        ]

    async def test_a_webhook_for_our_own_unknown_refund_settles_it_without_a_second_record(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        simulator.add_fault("stall_after_commit", stall_s=5)
        async with app_client(create_app(short_read(service_settings))) as impatient:
            lost = await impatient.post(
                f"/payments/{payment['id']}/refunds",
                json={"amount": "15.00"},
                headers=shop.auth(ADMIN, roles=("admin",)),
            )
        assert lost.json()["status"] == "unknown"
        (made,) = [
            t
            for t in simulator.transactions()
            if t["type"] == "refundTransaction" and t["refTransId"] == payment["gateway"]["transaction_id"]
        ]
        details = await resources.gateway.fetch_transaction_details(made["transId"])
        assert details is not None

        recorded = await refund_service(resources).record_external_refund(details)

        assert recorded is not None
        assert (recorded.refund_id, recorded.status) == (lost.json()["id"], RefundStatus.SUCCEEDED)
        assert store_rows(service_settings, "SELECT origin, status FROM refunds") == [("api", "succeeded")]
        assert await refund_reconciler(resources, GRACE).reconcile_once() == {}

    async def test_the_worker_runs_the_refund_reconciler(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        simulator.add_fault("stall_after_commit", stall_s=5)
        async with app_client(create_app(short_read(service_settings))) as impatient:
            lost = await impatient.post(
                f"/payments/{payment['id']}/refunds",
                json={"amount": "5.00"},
                headers=shop.auth(ADMIN, roles=("admin",)),
            )
        assert lost.json()["status"] == "unknown"
        stop = asyncio.Event()
        worker = asyncio.create_task(serve_worker(service_settings.model_copy(update={"reconciler": GRACE}), stop=stop))
        try:

            async def settled() -> bool:
                async with resources.database.reading() as conn:
                    found = await refund_rows.fetch_refund(conn, lost.json()["id"])
                return found is not None and found.status is RefundStatus.SUCCEEDED

            await wait_until(settled, timeout_s=10, interval_s=0.02)
        finally:
            stop.set()
            async with asyncio.timeout(10):
                await worker
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("5.00")]


class TestChargesTheOrderRefused:
    async def test_an_order_cancelled_while_its_charge_was_unknown_gets_the_adopted_charge_voided(
        self,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        order_id, payment_id = await unknown_charge_of_a_cancelled_order(service_settings, shop, simulator)
        refunds = refund_service(resources)
        reconciler = Reconciler(
            database=resources.database,
            gateway=resources.gateway,
            db_service=resources.db_service,
            settings=GRACE,
            refunds=refunds,
        )

        reversals = {"reason": "order_cancelled", "result": "given_back"}
        before = REGISTRY.get_sample_value("payment_service_charge_reversals_total", reversals) or 0.0

        report = await reconciler.reconcile_once()

        assert REGISTRY.get_sample_value("payment_service_charge_reversals_total", reversals) == before + 1
        assert report.results[payment_id] is ReconcileResult.ADOPTED
        (charge,) = simulator.transactions(invoice_number=order_id)
        assert charge["status"] == "voided"
        current = await refunds.current_payment(payment_id)
        assert (current.status.value, current.refunded_amount) == ("voided", Decimal("59.97"))
        assert store_rows(service_settings, "SELECT kind, status, origin, reason FROM refunds") == [
            ("void", "succeeded", "automatic", "order_cancelled")
        ]
        assert outbox_types(service_settings, order_id)[-2:] == ["payment.voided", "order.refunded"]
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_status"]) == ("cancelled", "voided")

    async def test_an_order_paid_by_another_attempt_meanwhile_gets_the_adopted_charge_voided(
        self,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        simulator.add_fault("stall_after_commit", stall_s=5)
        async with app_client(create_app(short_read(service_settings))) as client:
            response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
        assert response.json()["status"] == "unknown"
        # Another attempt (another instance, a manual payment) paid the order in the meantime.
        other = payment_body(order_id, customer, status="approved", version=2) | {
            "created_at": datetime.now(UTC).isoformat()
        }
        with shop.db.client() as db:
            assert db.put("/payments/pay_OTHER", json=other).status_code == 201
        reconciler = Reconciler(
            database=resources.database,
            gateway=resources.gateway,
            db_service=resources.db_service,
            settings=GRACE,
            refunds=refund_service(resources),
        )

        await reconciler.reconcile_once()

        (charge,) = simulator.transactions(invoice_number=order_id)
        assert charge["status"] == "voided"
        assert store_rows(service_settings, "SELECT kind, status, origin, reason FROM refunds") == [
            ("void", "succeeded", "automatic", "order_already_paid")
        ]
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_id"]) == ("paid", "pay_OTHER")

    async def test_an_order_cancelled_while_the_pay_request_waited_gets_its_charge_voided_at_once(
        self, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        simulator.add_fault("latency", latency_ms=1500)
        async with app_client(create_app(service_settings)) as client:
            paying = client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="k-1"))
            task = asyncio.ensure_future(paying)
            async with asyncio.timeout(10):
                while not store_rows(service_settings, "SELECT 1 FROM payments WHERE order_id = ?", order_id):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            with shop.db.client() as db:
                assert db.post(f"/orders/{order_id}/cancel").json()["status"] == "cancelled"
            response = await task
            replay = await client.post(
                "/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="k-1")
            )

        assert response.json()["status"] == "voided"
        assert replay.json() == response.json()
        (charge,) = simulator.transactions(invoice_number=order_id)
        assert charge["status"] == "voided"
        assert outbox_types(service_settings, order_id) == [
            "payment.approved",
            "order.paid",
            "payment.voided",
            "order.refunded",
        ]
