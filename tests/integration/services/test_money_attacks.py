"""Attacks on giving money back: lost answers under clock skew, racing replicas, refunds of what was not taken.

Against the strict simulator over HTTP (its clock well behind ours), the real reference db-service,
and one SQLite store shared by two API instances. Each test tries to give back more than was taken,
or to lose or misstate a refund, and checks the gateway's ledger and the stored records. The last
class attacks the pay flow's own writes the same way: one key sent through two instances at once, and
an answer arriving after the reconciler recorded the charge.
"""

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.api.app import create_app
from payment_service.domain.errors import PaymentNotRefundable, RefundNotAllowed
from payment_service.domain.payments import PaymentStatus
from payment_service.domain.refunds import RefundStatus
from payment_service.resources import Resources
from payment_service.services.order_updates import SweepResult
from payment_service.services.reconciliation import Reconciler, ReconcileResult
from payment_service.services.refunds import RefundCommand, RefundService
from payment_service.settings import ReconcilerSettings, Settings
from payment_service.store import order_updates_due
from payment_service.store import payments as payment_rows
from tests.integration.conftest import MASTERCARD, Shop, app_client, card_body, short_read, store_rows
from tests.integration.services.test_money_paths import after_grace, pay, pay_lost, reconciler_for, status_of
from tests.integration.services.test_order_updates_due import LATER, fresh_sweep
from tests.support.events import wait_until
from tests.support.refunds import (
    paid,
    refund_reconciler,
    refund_service,
    refunds_in_ledger,
    unknown_charge_of_a_cancelled_order,
)
from tests.support.simulator import ManualClock, SimulatorHandle, run_simulator

# The gateway's clock behind ours by more than the reconciler's default skew margin (900 s).
SKEW = timedelta(minutes=40)
GRACE = ReconcilerSettings(interval_s=0.01, processing_grace_s=60, not_found_grace_s=600, page_size=2)
ADMIN = "staff-1"


def gateway_clock() -> datetime:
    return datetime.now(UTC) - SKEW


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    # The merchant account takes KWD (three decimals) and JPY (none) too.
    accepted = frozenset({"USD", "KWD", "JPY"})
    with run_simulator(strict=True, clock=gateway_clock, accepted_currencies=accepted) as handle:
        yield handle


@pytest.fixture
def service_settings(service_settings: Settings) -> Settings:
    gateway = service_settings.gateway.model_copy(update={"accepted_currencies": frozenset({"USD", "KWD", "JPY"})})
    return service_settings.model_copy(update={"gateway": gateway})


def admin(shop: Shop, key: str | None = None) -> dict[str, str]:
    return shop.auth(ADMIN, roles=("admin",), key=key)


def stored_refunds(settings: Settings, payment_id: str) -> list[tuple[str, str]]:
    rows = store_rows(
        settings, "SELECT amount, status FROM refunds WHERE payment_id = ? ORDER BY created_at", payment_id
    )
    return [(row[0], row[1]) for row in rows]


class TestLostChargeUnderClockSkew:
    async def test_a_charge_lost_with_the_gateway_clock_40_minutes_behind_is_adopted_by_a_fresh_reconciler(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # An earlier charge whose answer was read: the only clue to the gateway's clock a fresh worker has.
        earlier = await pay(service_settings, shop, (customer := shop.customer()), str(shop.order(customer)["id"]))
        assert earlier["http_status"] == 201, earlier
        customer, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")

        report = await reconciler_for(resources, after_grace()).reconcile_once()
        retry = await pay(service_settings, shop, customer, order_id, number=MASTERCARD)

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert await status_of(resources, payment_id) is PaymentStatus.APPROVED
        assert retry["http_status"] == 409  # paid: the other card is not charged
        assert [t["status"] for t in simulator.transactions(invoice_number=order_id)] == ["capturedPendingSettlement"]

    async def test_with_nothing_but_the_lost_charge_stored_a_fresh_reconciler_reads_the_lag_from_the_answers(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # No earlier charge to measure on: only the `Date` of the gateway's answers shows how far it lags.
        customer, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")
        reconciler = reconciler_for(resources, after_grace())

        first = await reconciler.reconcile_once()
        second = await reconciler.reconcile_once()
        retry = await pay(service_settings, shop, customer, order_id, number=MASTERCARD)

        assert first.results[payment_id] is ReconcileResult.ADOPTED
        assert payment_id not in second.results  # settled: never looked at again, never "not charged"
        assert await status_of(resources, payment_id) is PaymentStatus.APPROVED
        assert retry["http_status"] == 409
        assert [t["status"] for t in simulator.transactions(invoice_number=order_id)] == ["capturedPendingSettlement"]
        skew_s = REGISTRY.get_sample_value("payment_service_gateway_clock_skew_seconds")
        assert skew_s is not None
        assert -SKEW.total_seconds() - 5 < skew_s <= -SKEW.total_seconds() + 1


class TestLostRefundUnderClockSkew:
    async def test_a_refund_lost_with_the_gateway_clock_40_minutes_behind_is_found_and_never_given_twice(
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
            lost = await impatient.post(url, json={"amount": "60.00"}, headers=admin(shop))
        assert (lost.status_code, lost.json()["status"]) == (202, "unknown"), lost.text

        clock = ManualClock(datetime.now(UTC) + timedelta(seconds=GRACE.not_found_grace_s + 60))
        settled = await refund_reconciler(resources, GRACE, clock).reconcile_once()
        # Had the lost refund been called "failed", its 60 would be free to refund again.
        again = await api_client.post(url, json={"amount": "60.00"}, headers=admin(shop))

        assert settled == {lost.json()["id"]: RefundStatus.SUCCEEDED}
        assert again.status_code == 422, again.text
        assert refunds_in_ledger(simulator, charge_id) == [Decimal("60.00")]
        assert stored_refunds(service_settings, payment["id"]) == [("60.00", "succeeded")]


class TestRacingReplicas:
    async def test_three_concurrent_refunds_of_40_through_two_api_instances_give_back_at_most_the_capture(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"
        async with app_client(create_app(service_settings)) as other:
            answers = await asyncio.gather(
                api_client.post(url, json={"amount": "40.00"}, headers=admin(shop)),
                other.post(url, json={"amount": "40.00"}, headers=admin(shop)),
                other.post(url, json={"amount": "40.00"}, headers=admin(shop)),
            )

        assert sorted(answer.status_code for answer in answers) == [201, 201, 422]
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("40.00")] * 2
        assert sorted(stored_refunds(service_settings, payment["id"])) == [("40.00", "succeeded")] * 2

    async def test_the_same_idempotency_key_on_two_instances_at_once_sends_one_refund(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"
        body: dict[str, Any] = {"amount": "25.00"}
        async with app_client(create_app(service_settings)) as other:
            answers = await asyncio.gather(
                api_client.post(url, json=body, headers=admin(shop, key="twice")),
                other.post(url, json=body, headers=admin(shop, key="twice")),
            )

        # One is sent; the other replays it or is told the key is in flight, never a second refund.
        assert sorted(answer.status_code for answer in answers) in ([201, 201], [201, 409])
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("25.00")]
        assert stored_refunds(service_settings, payment["id"]) == [("25.00", "succeeded")]


class _DiesBeforeRecording(RefundService):
    """A process that dies after the gateway answered and before the answer is stored."""

    async def settle(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died here")


class TestCrashes:
    async def test_a_refund_answered_but_never_stored_is_settled_by_a_fresh_reconciler_with_one_gateway_refund(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        dying = _DiesBeforeRecording(
            database=resources.database,
            db_service=resources.db_service,
            gateway=resources.gateway,
            idempotency_ttl_s=60,
        )
        with pytest.raises(RuntimeError, match="died"):
            await dying.refund(
                RefundCommand(payment["id"], Decimal("30.00")),
                requested_by=ADMIN,
                idempotency_key=None,
                render=lambda refund: pytest.fail("nothing is rendered by a dead process"),
            )
        assert stored_refunds(service_settings, payment["id"]) == [("30.00", "processing")]

        clock = ManualClock(datetime.now(UTC) + timedelta(seconds=GRACE.processing_grace_s + 1))
        settled = await refund_reconciler(resources, GRACE, clock).reconcile_once()
        current = (await api_client.get(f"/payments/{payment['id']}", headers=admin(shop))).json()

        assert list(settled.values()) == [RefundStatus.SUCCEEDED]
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("30.00")]
        assert (current["status"], current["refunded_amount"]) == ("partially_refunded", "30.00")


class TestReversalRace:
    async def test_an_admin_refund_racing_the_automatic_reversal_voids_the_charge_once(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        async with resources.database.reading() as conn:
            stored = await payment_rows.fetch_payment(conn, payment["id"])
        assert stored is not None
        url = f"/payments/{payment['id']}/refunds"

        answer, reversal = await asyncio.gather(
            api_client.post(url, json={}, headers=admin(shop)),
            refund_service(resources).reverse_charge(stored, reason="order_cancelled"),
            return_exceptions=True,
        )

        # Exactly one of them voids it; the other finds nothing left.
        assert isinstance(answer, httpx.Response)
        if answer.status_code == 201:
            assert reversal is None or isinstance(reversal, RefundNotAllowed | PaymentNotRefundable), reversal
        else:
            assert answer.status_code in (409, 422), answer.text
            assert reversal is not None
            assert not isinstance(reversal, BaseException), reversal
        charge = next(t for t in simulator.transactions() if t["transId"] == payment["gateway"]["transaction_id"])
        assert charge["status"] == "voided"
        assert stored_refunds(service_settings, payment["id"]) == [("100.00", "succeeded")]


def reversals(result: str) -> float:
    labels = {"reason": "order_cancelled", "result": result}
    return REGISTRY.get_sample_value("payment_service_charge_reversals_total", labels) or 0.0


class TestReversalThatDidNotHappen:
    async def test_a_void_of_a_cancelled_orders_charge_that_the_gateway_never_made_stays_due_for_another_try(
        self, shop: Shop, simulator: SimulatorHandle, resources: Resources, service_settings: Settings
    ) -> None:
        # An earlier answered charge tells the reconciler how far the gateway's clock lags.
        earlier = await pay(service_settings, shop, (first := shop.customer()), str(shop.order(first)["id"]))
        assert earlier["http_status"] == 201, earlier
        order_id, payment_id = await unknown_charge_of_a_cancelled_order(service_settings, shop, simulator)
        refunds = refund_service(resources)
        reconciler = Reconciler(
            database=resources.database,
            gateway=resources.gateway,
            db_service=resources.db_service,
            settings=GRACE,
            refunds=refunds,
            clock=after_grace(),
        )
        given_back, left = reversals("given_back"), reversals("left_for_a_person")
        simulator.add_fault("system_error")  # the void is answered E00001 and never made

        report = await reconciler.reconcile_once()
        in_doubt = (reversals("given_back"), reversals("left_for_a_person"))
        clock = ManualClock(datetime.now(UTC) + timedelta(seconds=GRACE.not_found_grace_s + 60))
        await refund_reconciler(resources, GRACE, clock).reconcile_once()

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        (charge,) = simulator.transactions(invoice_number=order_id)
        assert charge["status"] == "capturedPendingSettlement"  # the money is still taken
        assert in_doubt == (given_back, left)  # not counted as given back while nobody knows
        # Not left for a person yet either: the order update sweep tries the reversal again.
        assert (reversals("given_back"), reversals("left_for_a_person")) == (given_back, left)
        assert store_rows(service_settings, "SELECT kind, status, origin FROM refunds") == [
            ("void", "failed", "automatic")
        ]
        assert store_rows(service_settings, "SELECT payment_id FROM order_updates_due") == [(payment_id,)]


class TestNothingToGiveBack:
    async def test_a_payment_whose_charge_is_unknown_cannot_be_refunded(
        self, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer, price="100.00", quantity=1)["id"])
        simulator.add_fault("reset_after_commit")
        async with app_client(create_app(short_read(service_settings))) as client:
            lost = await client.post(
                "/payments/pay",
                json={
                    "order_id": order_id,
                    "payment": {"card": {"number": "4111111111111111", "expiration": "2031-12", "cvv": "123"}},
                },
                headers=shop.auth(customer),
            )
            assert (lost.status_code, lost.json()["status"]) == (202, "unknown"), lost.text
            refused = await client.post(
                f"/payments/{lost.json()['id']}/refunds", json={"amount": "10.00"}, headers=admin(shop)
            )

        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        # The charge stands at the gateway, neither voided nor refunded.
        charges = simulator.transactions(invoice_number=order_id)
        assert [t["status"] for t in charges] == ["capturedPendingSettlement"]
        assert refunds_in_ledger(simulator, charges[0]["transId"]) == []
        assert stored_refunds(service_settings, lost.json()["id"]) == []

    async def test_partial_refunds_that_reach_the_capture_exactly_leave_nothing_and_one_cent_more_is_refused(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop, price="100.00")
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"

        first = await api_client.post(url, json={"amount": "33.33"}, headers=admin(shop))
        second = await api_client.post(url, json={"amount": "66.67"}, headers=admin(shop))
        over = await api_client.post(url, json={"amount": "0.01"}, headers=admin(shop))
        rest = await api_client.post(url, json={}, headers=admin(shop))
        too_precise = await api_client.post(url, json={"amount": "0.001"}, headers=admin(shop))
        current = (await api_client.get(f"/payments/{payment['id']}", headers=admin(shop))).json()

        assert (first.status_code, second.status_code) == (201, 201)
        # Fully refunded: nothing is left, whatever the amount asked, "all that is left" included.
        for refused in (over, rest, too_precise):
            assert (refused.status_code, refused.json()["code"]) == (409, "nothing_left_to_refund"), refused.text
        assert (current["status"], current["refunded_amount"]) == ("refunded", "100.00")
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [
            Decimal("33.33"),
            Decimal("66.67"),
        ]


async def paid_in(api_client: httpx.AsyncClient, shop: Shop, price: str, currency: str) -> dict[str, Any]:
    customer = shop.customer()
    product = shop.db.create_product("Brass lamp", price)
    order = shop.db.create_order(customer, [(str(product["id"]), 1)], currency=currency)
    response = await api_client.post(
        "/payments/pay",
        json={
            "order_id": str(order["id"]),
            "payment": {"card": {"number": "4111111111111111", "expiration": "2031-12", "cvv": "123"}},
        },
        headers=shop.auth(customer),
    )
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()
    return payment


class TestCurrencies:
    async def test_kwd_refunds_to_the_fils_sum_exactly_to_the_capture_and_a_tenth_of_a_fils_is_refused(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        # The reference db-service prices to two decimals; the refunds go to the fils.
        payment = await paid_in(api_client, shop, "1.24", "KWD")
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"

        too_precise = await api_client.post(url, json={"amount": "0.6175"}, headers=admin(shop))
        first = await api_client.post(url, json={"amount": "0.617"}, headers=admin(shop))
        rest = await api_client.post(url, json={}, headers=admin(shop))
        current = (await api_client.get(f"/payments/{payment['id']}", headers=admin(shop))).json()

        assert too_precise.status_code == 422, too_precise.text
        assert (first.status_code, rest.status_code) == (201, 201)
        assert rest.json()["amount"] == "0.623"
        assert (current["status"], current["refunded_amount"]) == ("refunded", "1.240")
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [
            Decimal("0.617"),
            Decimal("0.623"),
        ]

    async def test_a_jpy_refund_with_sen_is_refused_and_whole_yen_go_back(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        payment = await paid_in(api_client, shop, "5000", "JPY")
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"

        with_sen = await api_client.post(url, json={"amount": "0.50"}, headers=admin(shop))
        whole = await api_client.post(url, json={"amount": "1999"}, headers=admin(shop))

        assert with_sen.status_code == 422, with_sen.text
        assert whole.status_code == 201, whole.text
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("1999")]


class TestPaging:
    async def test_a_lost_refund_behind_more_than_a_page_of_newer_transactions_is_found(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"
        simulator.add_fault("stall_after_commit", stall_s=5)
        async with app_client(create_app(short_read(service_settings))) as impatient:
            lost = await impatient.post(url, json={"amount": "10.00"}, headers=admin(shop))
        assert lost.json()["status"] == "unknown", lost.text
        for _ in range(3 * GRACE.page_size):  # newer unsettled charges push it past the first pages
            await paid(api_client, shop)

        clock = ManualClock(datetime.now(UTC) + timedelta(seconds=GRACE.not_found_grace_s + 60))
        settled = await refund_reconciler(resources, GRACE, clock).reconcile_once()

        assert settled == {lost.json()["id"]: RefundStatus.SUCCEEDED}
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("10.00")]


def store_list(settings: Settings, query: str, order_id: str) -> list[Any]:
    return [row[0] for row in store_rows(settings, query, order_id)]


class TestPayWritesOnOneStore:
    """The pay flow's two writes (one statement each on PostgreSQL) raced by two instances and the reconciler."""

    async def test_one_key_sent_six_times_through_two_instances_charges_once_and_every_answer_is_that_charge(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = shop.auth(customer, key="six-clicks")
        async with app_client(create_app(service_settings)) as one, app_client(create_app(service_settings)) as two:
            answers = await asyncio.gather(
                *((one, two)[n % 2].post("/payments/pay", json=card_body(order_id), headers=headers) for n in range(6))
            )
            replay = await one.post("/payments/pay", json=card_body(order_id), headers=headers)

        charged = [answer.json()["id"] for answer in answers if answer.status_code == 201]
        assert len(set(charged)) == 1, [answer.text for answer in answers]
        refused = [answer.json()["code"] for answer in answers if answer.status_code != 201]
        assert set(refused) <= {"idempotency_key_in_flight"}, [answer.text for answer in answers]
        assert (replay.status_code, replay.json()["id"], replay.json()["status"]) == (201, charged[0], "approved")
        assert len(simulator.transactions(invoice_number=order_id)) == 1
        assert store_list(service_settings, "SELECT payment_id FROM payments WHERE order_id = ?", order_id) == [
            charged[0]
        ]
        outbox = "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq"
        assert store_list(service_settings, outbox, order_id) == ["payment.approved", "order.paid"]
        assert shop.db.get_order(order_id)["payment_status"] == "approved"  # type: ignore[index]
        assert store_rows(service_settings, "SELECT payment_id FROM order_updates_due") == []

    async def test_an_answer_arriving_after_the_reconciler_settled_the_charge_writes_no_second_record(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = shop.auth(customer, key="slow-answer")
        patient = service_settings.model_copy(
            update={"gateway": service_settings.gateway.model_copy(update={"read_timeout_s": 30.0})}
        )
        # The gateway commits the charge and holds its answer while the reconciler finds and records it.
        simulator.add_fault("stall_after_commit", stall_s=4)
        async with app_client(create_app(patient)) as client:
            paying = asyncio.create_task(client.post("/payments/pay", json=card_body(order_id), headers=headers))

            async def charged() -> bool:
                return bool(await asyncio.to_thread(simulator.transactions, invoice_number=order_id))

            await wait_until(charged, timeout_s=10, interval_s=0.02)
            payment_id = store_list(service_settings, "SELECT payment_id FROM payments WHERE order_id = ?", order_id)[0]
            report = await reconciler_for(resources, after_grace()).reconcile_once()
            answer = await paying
            replay = await client.post("/payments/pay", json=card_body(order_id), headers=headers)

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert (answer.status_code, answer.json()["id"], answer.json()["status"]) == (201, payment_id, "approved")
        assert (replay.status_code, replay.json()["status"]) == (201, "approved")  # the key holds the record's answer
        transitions = "SELECT to_status FROM payment_transitions WHERE payment_id = ? ORDER BY seq"
        assert store_list(service_settings, transitions, payment_id) == ["processing", "approved"]
        outbox = "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq"
        assert store_list(service_settings, outbox, order_id) == ["payment.approved", "order.paid"]  # not twice
        assert len(simulator.transactions(invoice_number=order_id)) == 1
        assert shop.db.get_order(order_id)["payment_status"] == "approved"  # type: ignore[index]
        assert store_rows(service_settings, "SELECT payment_id FROM order_updates_due") == []

    async def test_approvals_whose_shared_order_update_delete_fails_stay_due_and_a_sweep_tells_each_order_once(
        self,
        service_settings: Settings,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async def failing(conn: AsyncConnection, payment_ids: Sequence[str]) -> None:
            raise OperationalError("DELETE", {}, Exception("the server went away"))

        monkeypatch.setattr(order_updates_due, "clear_all_due", failing)
        customers = [shop.customer() for _ in range(3)]
        orders = [str(shop.order(customer)["id"]) for customer in customers]
        requests = [
            (card_body(order_id), shop.auth(customer, key=f"shared-delete-{order_id}"))
            for customer, order_id in zip(customers, orders, strict=True)
        ]
        async with app_client(create_app(service_settings)) as client:
            answers = await asyncio.gather(
                *(client.post("/payments/pay", json=body, headers=headers) for body, headers in requests)
            )
            monkeypatch.undo()
            replays = [await client.post("/payments/pay", json=body, headers=headers) for body, headers in requests]

        # Charged, recorded and told: the customer hears so, whatever became of the reminder's delete.
        assert [(a.status_code, a.json()["status"]) for a in answers] == [(201, "approved")] * 3, answers[0].text
        assert [r.json() for r in replays] == [a.json() for a in answers]
        ids = sorted(r.json()["id"] for r in replays)
        assert sorted(row[0] for row in store_rows(service_settings, "SELECT payment_id FROM order_updates_due")) == ids

        results = await fresh_sweep(resources, ManualClock(datetime.now(UTC) + LATER)).sweep_once()

        assert results == dict.fromkeys(ids, SweepResult.UPDATED)
        assert store_rows(service_settings, "SELECT payment_id FROM order_updates_due") == []
        for order_id in orders:
            assert shop.db.get_order(order_id)["payment_status"] == "approved"  # type: ignore[index]
            assert len(simulator.transactions(invoice_number=order_id)) == 1
