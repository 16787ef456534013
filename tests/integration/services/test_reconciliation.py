"""The reconciler against the real simulator and the real reference db-service, over HTTP.

Charges whose outcome is unknown are made through the API with the simulator's faults (stall or
reset after commit); attempts that never reached the gateway, or whose process died after sending,
are written into the store directly, as the pay flow would have left them. Time is a `ManualClock`.
"""

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from payment_service.api.app import create_app
from payment_service.domain.charge_identity import describe_attempt
from payment_service.domain.money import Money
from payment_service.domain.payments import (
    CardDetails,
    ChargeOutcomeKind,
    ChargeRequest,
    GatewayResult,
    Payment,
    PaymentStatus,
)
from payment_service.gateway.client import AuthorizeNetGateway
from payment_service.resources import Resources, open_resources
from payment_service.services.reconciliation import Reconciler, ReconcileResult
from payment_service.settings import ReconcilerSettings, Settings
from payment_service.store import payments as payment_rows
from payment_service.worker.main import serve_worker
from tests.integration.conftest import VISA, Shop, app_client, card_body, short_read, store_rows
from tests.support.events import wait_until
from tests.support.simulator import ManualClock, SimulatorHandle, run_simulator

DEADLINE_S = 10
DECLINE_ZIP = "46282"  # the simulator declines charges billed to this ZIP (reason 2)
GRACE = ReconcilerSettings(interval_s=0.01, processing_grace_s=60, not_found_grace_s=600, max_backoff_s=0.04)


def outbox_types(settings: Settings, order_id: str) -> list[str]:
    rows = store_rows(settings, "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq", order_id)
    return [row[0] for row in rows]


@pytest.fixture(scope="module", params=["lenient", "strict"])
def simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorHandle]:
    """Each test twice: against the simulator's generous answers, and against its strict ones (no
    `transrefId`, `requestedAmount` or `totalNumInResultSet`; settled-batch dates read as merchant-local)."""
    with run_simulator(strict=request.param == "strict") as handle:
        yield handle


def reconciler_for(
    resources: Resources, clock: ManualClock | None = None, gateway: AuthorizeNetGateway | None = None
) -> Reconciler:
    return Reconciler(
        database=resources.database,
        gateway=gateway or resources.gateway,
        db_service=resources.db_service,
        settings=GRACE,
        clock=clock,
    )


async def fetch(resources: Resources, payment_id: str) -> Payment:
    async with resources.database.reading() as conn:
        payment = await payment_rows.fetch_payment(conn, payment_id)
    assert payment is not None
    return payment


async def pay_with_fault(
    settings: Settings, shop: Shop, simulator: SimulatorHandle, fault: str, **options: Any
) -> tuple[str, dict[str, Any]]:
    """An order paid through the API while the simulator applies `fault`; (order id, response body)."""
    customer = shop.customer()
    order_id = str(shop.order(customer)["id"])
    simulator.add_fault(fault, **options)
    async with app_client(create_app(short_read(settings))) as client:
        response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return order_id, body


async def insert_attempt(
    resources: Resources, shop: Shop, *, status: PaymentStatus, sent_at: datetime, ref_id: str
) -> Payment:
    """An attempt row as the pay flow leaves it before (or instead of) recording an answer."""
    customer = shop.customer()
    order = shop.order(customer)
    payment = Payment(
        payment_id=f"pay_{ref_id}",
        order_id=str(order["id"]),
        customer_id=customer,
        status=status,
        amount=Money(Decimal("59.97"), "USD"),
        invoice_number=str(order["id"]),
        ref_id=ref_id,
        card_last4="1111",
        card_brand="Visa",
        created_at=sent_at,
        updated_at=sent_at,
        sent_at=sent_at,
    )
    async with resources.database.transaction() as conn:
        await payment_rows.insert_payment(conn, payment, reason="attempt_created")
    return payment


def unique_ref_id() -> str:
    return f"T{datetime.now(UTC).strftime('%H%M%S%f')}"


class TestReconcileUnknownCharges:
    @pytest.mark.parametrize("fault", ["stall_after_commit", "reset_after_commit"])
    async def test_a_charge_whose_answer_was_lost_is_adopted_as_approved_once(
        self, fault: str, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        order_id, body = await pay_with_fault(service_settings, shop, simulator, fault, stall_s=5)
        assert body["status"] == "unknown"
        assert shop.db.get_order(order_id)["payment_status"] == "unknown"  # type: ignore[index]
        reconciler = reconciler_for(resources)

        report = await reconciler.reconcile_once()
        again = await reconciler.reconcile_once()

        ledger = simulator.transactions(invoice_number=order_id)
        assert len(ledger) == 1
        assert report.results[body["id"]] is ReconcileResult.ADOPTED
        payment = await fetch(resources, body["id"])
        assert payment.status is PaymentStatus.APPROVED
        assert payment.gateway is not None
        assert payment.gateway.transaction_id == ledger[0]["transId"]
        assert payment.gateway.auth_code
        assert payment.gateway.account_number == "XXXX1111"
        assert payment.version == 3  # attempt, unknown, approved
        assert payment.captured_amount == Decimal("59.97")
        assert outbox_types(service_settings, order_id) == ["payment.approved", "order.paid"]
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_status"], order["payment_id"]) == ("paid", "approved", body["id"])
        assert body["id"] not in again.results  # settled: no longer looked at

    async def test_an_attempt_that_never_reached_the_gateway_fails_only_after_the_grace_period(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        sent_at = datetime.now(UTC)
        attempt = await insert_attempt(
            resources, shop, status=PaymentStatus.UNKNOWN, sent_at=sent_at, ref_id=unique_ref_id()
        )
        clock = ManualClock(sent_at + timedelta(seconds=60))
        reconciler = reconciler_for(resources, clock)

        within = await reconciler.reconcile_once()
        still = await fetch(resources, attempt.payment_id)
        clock.advance(seconds=600)
        after = await reconciler.reconcile_once()

        assert within.results[attempt.payment_id] is ReconcileResult.PENDING
        assert still == attempt
        assert after.results[attempt.payment_id] is ReconcileResult.NOT_CHARGED
        failed = await fetch(resources, attempt.payment_id)
        assert (failed.status, failed.version, failed.captured_amount) == (PaymentStatus.FAILED, 2, Decimal(0))
        assert failed.gateway is not None
        assert failed.gateway.transaction_id is None
        assert outbox_types(service_settings, attempt.order_id) == ["payment.failed"]
        assert simulator.transactions(invoice_number=attempt.invoice_number) == []
        assert shop.db.get_order(attempt.order_id)["payment_status"] == "failed"  # type: ignore[index]
        transitions = store_rows(
            service_settings,
            "SELECT from_status, to_status, version, reason FROM payment_transitions WHERE payment_id = ? ORDER BY seq",
            attempt.payment_id,
        )
        assert transitions[-1] == ("unknown", "failed", 2, "reconciled_not_found")

    async def test_a_processing_attempt_whose_process_died_after_sending_is_resolved_after_the_grace(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        sent_at = datetime.now(UTC)
        attempt = await insert_attempt(
            resources, shop, status=PaymentStatus.PROCESSING, sent_at=sent_at, ref_id=unique_ref_id()
        )
        # The charge the dead process sent: it reached the gateway, its answer was never recorded.
        outcome = await resources.gateway.charge(
            ChargeRequest(
                amount=attempt.amount,
                payment_method=CardDetails.parse(
                    number=VISA, expiration="2031-12", cvv="123", today=datetime.now(UTC).date()
                ),
                invoice_number=attempt.invoice_number,
                ref_id=attempt.ref_id,
                description=describe_attempt(attempt.ref_id, attempt.order_id),
            )
        )
        assert outcome.kind is ChargeOutcomeKind.APPROVED
        clock = ManualClock(sent_at + timedelta(seconds=30))
        reconciler = reconciler_for(resources, clock)

        young = await reconciler.reconcile_once()
        clock.advance(seconds=60)
        old = await reconciler.reconcile_once()

        assert attempt.payment_id not in young.results
        assert old.results[attempt.payment_id] is ReconcileResult.ADOPTED
        payment = await fetch(resources, attempt.payment_id)
        assert payment.status is PaymentStatus.APPROVED
        assert payment.gateway is not None
        assert payment.gateway.transaction_id == outcome.result.transaction_id
        assert outbox_types(service_settings, attempt.order_id) == ["payment.approved", "order.paid"]
        assert len(simulator.transactions(invoice_number=attempt.invoice_number)) == 1

    async def test_a_payment_changed_meanwhile_is_skipped(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        order_id, body = await pay_with_fault(service_settings, shop, simulator, "stall_after_commit", stall_s=5)
        before = await fetch(resources, body["id"])
        simulator.add_fault("latency", method="getUnsettledTransactionListRequest", latency_ms=400)
        reconciler = reconciler_for(resources)

        task = asyncio.create_task(reconciler.reconcile_once())

        async def looking_up() -> bool:
            last = simulator.requests(limit=1)
            return bool(last) and "getUnsettledTransactionListRequest" in str(last[-1]["body"])

        await wait_until(looking_up, timeout_s=DEADLINE_S, interval_s=0.01)
        # Someone else (another reconciler, say) settles it while this one looks it up.
        concurrent = replace(
            before, status=PaymentStatus.FAILED, version=before.version + 1, updated_at=datetime.now(UTC)
        )
        async with resources.database.transaction() as conn:
            await payment_rows.update_payment(conn, concurrent, previous=before, reason="concurrent")
        async with asyncio.timeout(DEADLINE_S):
            report = await task

        assert report.results[body["id"]] is ReconcileResult.CONFLICT
        assert report.changed == ()
        assert await fetch(resources, body["id"]) == concurrent
        assert outbox_types(service_settings, order_id) == []
        assert shop.db.get_order(order_id)["payment_status"] == "unknown"  # type: ignore[index]

    async def test_a_duplicate_is_not_adopted_when_its_original_is_another_payments_approval(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # The first attempt's approval was not read in time; its record, naming that charge, was closed
        # meanwhile, which frees the order for a second attempt with the same card.
        order_id, first = await pay_with_fault(service_settings, shop, simulator, "stall_after_commit", stall_s=5)
        (original,) = simulator.transactions(invoice_number=order_id)
        lost = await fetch(resources, first["id"])
        closed = replace(
            lost,
            status=PaymentStatus.FAILED,
            version=lost.version + 1,
            updated_at=datetime.now(UTC),
            gateway=GatewayResult(transaction_id=original["transId"], response_code="1"),
        )
        async with resources.database.transaction() as conn:
            await payment_rows.update_payment(conn, closed, previous=lost, reason="closed_for_the_test")
        customer = str(shop.db.get_order(order_id)["customer_id"])  # type: ignore[index]
        async with app_client(create_app(service_settings)) as client:
            duplicate = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
        assert (duplicate.status_code, duplicate.json()["status"]) == (202, "unknown")
        assert duplicate.json()["gateway"]["reason_code"] == "11"
        sent_at = (await fetch(resources, duplicate.json()["id"])).sent_at
        assert sent_at is not None
        clock = ManualClock(sent_at + timedelta(seconds=60))
        reconciler = reconciler_for(resources, clock)

        within = await reconciler.reconcile_once()
        clock.advance(seconds=600)
        after = await reconciler.reconcile_once()

        assert within.results[duplicate.json()["id"]] is ReconcileResult.PENDING
        assert after.results[duplicate.json()["id"]] is ReconcileResult.NOT_CHARGED
        assert [t["transId"] for t in simulator.transactions(invoice_number=order_id)] == [original["transId"]]

    async def test_a_replayed_idempotency_key_answers_the_reconciled_payment(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        simulator.add_fault("stall_after_commit", stall_s=5)
        headers = shop.auth(customer, key="replay-after-reconcile")
        async with app_client(create_app(short_read(service_settings))) as client:
            first = await client.post("/payments/pay", json=card_body(order_id), headers=headers)
            before = await client.post("/payments/pay", json=card_body(order_id), headers=headers)
            await reconciler_for(resources).reconcile_once()
            after = await client.post("/payments/pay", json=card_body(order_id), headers=headers)

        assert (first.status_code, first.json()["status"]) == (202, "unknown")
        assert (before.status_code, before.json()["status"]) == (202, "unknown")
        assert before.headers["idempotent-replayed"] == "true"
        assert after.status_code == 201
        assert after.headers["idempotent-replayed"] == "true"
        assert after.headers["location"] == f"/payments/{first.json()['id']}"
        assert after.json()["status"] == "approved"
        assert (
            after.json()["gateway"]["transaction_id"] == simulator.transactions(invoice_number=order_id)[0]["transId"]
        )
        assert len(simulator.transactions(invoice_number=order_id)) == 1

    async def test_an_approval_waits_while_the_db_service_is_down(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        order_id, body = await pay_with_fault(service_settings, shop, simulator, "stall_after_commit", stall_s=5)
        reconciler = reconciler_for(resources)

        shop.db.stop()
        try:
            down = await reconciler.reconcile_once()
            unchanged = await fetch(resources, body["id"])
        finally:
            shop.db.start()
        up = await reconciler.reconcile_once()

        assert down.results[body["id"]] is ReconcileResult.DEFERRED
        assert unchanged.status is PaymentStatus.UNKNOWN
        assert up.results[body["id"]] is ReconcileResult.ADOPTED
        assert outbox_types(service_settings, order_id) == ["payment.approved", "order.paid"]


class TestReconcileHeldPayments:
    async def test_a_held_payment_becomes_approved_once_the_review_approves_it(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        order_id, body = await pay_with_fault(service_settings, shop, simulator, "held_for_review")
        assert body["status"] == "held_for_review"
        reconciler = reconciler_for(resources)

        under_review = await reconciler.reconcile_once()
        simulator.review(body["gateway"]["transaction_id"], approve=True)
        decided = await reconciler.reconcile_once()

        assert under_review.results[body["id"]] is ReconcileResult.PENDING
        assert decided.results[body["id"]] is ReconcileResult.REVIEWED
        payment = await fetch(resources, body["id"])
        assert payment.status is PaymentStatus.APPROVED
        assert payment.gateway is not None
        assert payment.gateway.transaction_id == body["gateway"]["transaction_id"]
        assert payment.gateway.auth_code
        assert outbox_types(service_settings, order_id) == ["payment.held_for_review", "payment.approved", "order.paid"]
        assert shop.db.get_order(order_id)["status"] == "paid"  # type: ignore[index]
        assert len(simulator.transactions(invoice_number=order_id)) == 1

    @pytest.mark.parametrize(
        ("hold_reason", "status"),
        [(252, PaymentStatus.DECLINED), (253, PaymentStatus.VOIDED)],
        ids=["held-before-authorisation-is-declined", "authorised-and-held-is-voided"],
    )
    async def test_a_held_payment_is_closed_once_the_review_declines_it(
        self,
        hold_reason: int,
        status: PaymentStatus,
        service_settings: Settings,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
    ) -> None:
        order_id, body = await pay_with_fault(
            service_settings, shop, simulator, "held_for_review", reason_code=hold_reason
        )
        simulator.review(body["gateway"]["transaction_id"], approve=False)

        report = await reconciler_for(resources).reconcile_once()

        assert report.results[body["id"]] is ReconcileResult.REVIEWED
        payment = await fetch(resources, body["id"])
        assert (payment.status, payment.captured_amount) == (status, Decimal(0))
        assert outbox_types(service_settings, order_id) == ["payment.held_for_review", f"payment.{status.value}"]
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_status"]) == ("pending", status.value)


class TestReconcilerLoop:
    async def test_an_unreachable_gateway_changes_nothing_and_run_keeps_going(
        self, service_settings: Settings, shop: Shop, resources: Resources
    ) -> None:
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        attempt = await insert_attempt(
            resources, shop, status=PaymentStatus.UNKNOWN, sent_at=long_ago, ref_id=unique_ref_id()
        )
        closed = service_settings.gateway.model_copy(update={"endpoint": "http://127.0.0.1:1/xml/v1/request.api"})
        async with open_resources(service_settings.model_copy(update={"gateway": closed})) as unreachable:
            reconciler = reconciler_for(resources, gateway=unreachable.gateway)

            report = await reconciler.reconcile_once()
            task = asyncio.create_task(reconciler.run())
            try:

                async def several_rounds() -> bool:
                    return reconciler.rounds >= 3

                await wait_until(several_rounds, timeout_s=DEADLINE_S, interval_s=0.01)
                assert not task.done()
            finally:
                task.cancel()
                await asyncio.wait({task})

        assert report.gateway_unavailable
        assert report.results == {}
        assert task.cancelled()
        assert await fetch(resources, attempt.payment_id) == attempt
        assert outbox_types(service_settings, attempt.order_id) == []

    async def test_run_settles_the_payment_once_the_gateway_answers_again(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        order_id, body = await pay_with_fault(service_settings, shop, simulator, "reset_after_commit")
        simulator.add_fault("system_error", method="getUnsettledTransactionListRequest", count=2)
        reconciler = reconciler_for(resources)

        task = asyncio.create_task(reconciler.run())
        try:

            async def approved() -> bool:
                return (await fetch(resources, body["id"])).status is PaymentStatus.APPROVED

            await wait_until(approved, timeout_s=DEADLINE_S, interval_s=0.01)
        finally:
            task.cancel()
            await asyncio.wait({task})

        assert reconciler.rounds >= 2  # the two refused look-ups; the round that found it may still be ending
        assert outbox_types(service_settings, order_id) == ["payment.approved", "order.paid"]

    async def test_the_worker_runs_the_reconciler_and_stops_cleanly(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        order_id, body = await pay_with_fault(service_settings, shop, simulator, "stall_after_commit", stall_s=5)
        settings = service_settings.model_copy(update={"reconciler": GRACE})
        stop = asyncio.Event()

        worker = asyncio.create_task(serve_worker(settings, stop=stop))
        try:

            async def approved() -> bool:
                paid = (shop.db.get_order(order_id) or {}).get("status") == "paid"
                return paid and (await fetch(resources, body["id"])).status is PaymentStatus.APPROVED

            await wait_until(approved, timeout_s=DEADLINE_S, interval_s=0.02)
        finally:
            stop.set()
            async with asyncio.timeout(DEADLINE_S):
                await worker

        assert shop.db.get_order(order_id)["status"] == "paid"  # type: ignore[index]
