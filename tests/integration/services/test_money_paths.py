"""Ways a real charge could be lost, doubled or misstated, tried against the strict simulator.

The simulator here runs in strict mode: transaction details without `transrefId` or `requestedAmount`,
lists without `totalNumInResultSet`, settled-batch dates read as US Pacific wall time. Each test
makes the money path go wrong the way it went wrong before, and checks what a customer and an
operator would see: the gateway's ledger, the stored payment, the order.
"""

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.api.app import create_app
from payment_service.domain.charge_identity import describe_attempt
from payment_service.domain.errors import ChargeRequestInvalid
from payment_service.domain.money import Money
from payment_service.domain.payments import CardDetails, ChargeRequest, GatewayResult, Payment, PaymentStatus
from payment_service.resources import Resources, open_resources
from payment_service.services import metrics
from payment_service.services.reconciliation import UNCONFIRMED_MESSAGE, Reconciler, ReconcileResult
from payment_service.settings import GatewaySettings, ReconcilerSettings, Settings
from payment_service.store import payments as payment_rows
from tests.integration.conftest import (
    MASTERCARD,
    VISA,
    Shop,
    app_client,
    build_settings,
    card_body,
    short_read,
    store_rows,
)
from tests.support.db_service import DbServiceHandle
from tests.support.simulator import ManualClock, SimulatorHandle, run_simulator

VISA_1881, OTHER_VISA_1881 = "4012888888881881", "4000000000041881"  # both Visa ending 1881
ORDER_TOTAL = Money.of("59.97")  # what `Shop.order` prices an order at
SKEW = timedelta(minutes=7)  # the gateway's clock behind ours
GRACE = ReconcilerSettings(interval_s=0.01, processing_grace_s=60, not_found_grace_s=600, page_size=2)


def gateway_clock() -> datetime:
    return datetime.now(UTC) - SKEW


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    # The merchant account takes KWD too (three decimals); EUR stays refused (reason 39).
    with run_simulator(strict=True, clock=gateway_clock, accepted_currencies=frozenset({"USD", "KWD"})) as handle:
        yield handle


@pytest.fixture
def service_settings(tmp_path: Any, simulator: SimulatorHandle, db_service: DbServiceHandle) -> Settings:
    return build_settings(tmp_path, simulator, db_service)


def after_grace() -> ManualClock:
    """Our clock once the not-found grace of a charge sent now has passed."""
    return ManualClock(datetime.now(UTC) + timedelta(seconds=GRACE.not_found_grace_s + 60))


def reconciler_for(resources: Resources, clock: ManualClock) -> Reconciler:
    return Reconciler(
        database=resources.database,
        gateway=resources.gateway,
        db_service=resources.db_service,
        settings=GRACE,
        clock=clock,
    )


async def pay(settings: Settings, shop: Shop, customer: str, order_id: str, **body: Any) -> dict[str, Any]:
    async with app_client(create_app(settings)) as client:
        response = await client.post("/payments/pay", json=card_body(order_id, **body), headers=shop.auth(customer))
    answer: dict[str, Any] = response.json()
    answer["http_status"] = response.status_code
    return answer


async def pay_lost(settings: Settings, shop: Shop, simulator: SimulatorHandle, fault: str) -> tuple[str, str, str]:
    """An order paid while the simulator commits the charge and loses the answer; (customer, order, payment)."""
    customer = shop.customer()
    order_id = str(shop.order(customer)["id"])
    simulator.add_fault(fault, stall_s=5)
    answer = await pay(short_read(settings), shop, customer, order_id)
    assert (answer["http_status"], answer["status"]) == (202, "unknown"), answer
    return customer, order_id, answer["id"]


async def status_of(resources: Resources, payment_id: str) -> PaymentStatus:
    async with resources.database.reading() as conn:
        payment = await payment_rows.fetch_payment(conn, payment_id)
    assert payment is not None
    return payment.status


class TestClockSkew:
    async def test_a_charge_found_with_the_gateway_clock_7_minutes_behind_is_adopted_and_a_retry_cannot_charge_again(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        customer, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")
        reconciler = reconciler_for(resources, after_grace())

        report = await reconciler.reconcile_once()
        retry = await pay(service_settings, shop, customer, order_id, number=MASTERCARD)

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert await status_of(resources, payment_id) is PaymentStatus.APPROVED
        assert retry["http_status"] == 409  # the order is paid: no second charge
        assert [entry["status"] for entry in simulator.transactions(invoice_number=order_id)] == [
            "capturedPendingSettlement"
        ]
        # Measured twice, both about 7 minutes behind: on the charge's submit time against our sending time,
        # and on the `Date` of the gateway's answers, the latest reading, which is exported.
        answered = resources.gateway.clock_skew
        assert reconciler.clock_skew_s is not None
        assert answered is not None
        assert -SKEW.total_seconds() - 5 < reconciler.clock_skew_s < -SKEW.total_seconds() + 5
        assert -SKEW.total_seconds() - 5 < answered.skew_s < -SKEW.total_seconds() + 5
        assert metrics.GATEWAY_CLOCK_SKEW._value.get() == answered.skew_s

    def test_a_duplicate_window_shorter_than_the_grace_plus_margin_is_refused_at_start(self) -> None:
        with pytest.raises(ValidationError, match=r"duplicate_window_s \(120\) must be at least"):
            Settings(gateway=GatewaySettings(duplicate_window_s=120))


class TestStrictGatewayAnswers:
    async def test_a_charge_is_confirmed_without_transref_id_by_the_attempt_id_it_carries(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        _, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "reset_after_commit")

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert await status_of(resources, payment_id) is PaymentStatus.APPROVED
        (entry,) = simulator.transactions(invoice_number=order_id)
        assert entry["description"].startswith(f"Payment {payment_id.removeprefix('pay_')} ")

    async def test_a_charge_behind_more_than_a_page_of_newer_ones_is_found_without_a_total(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        _, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")
        for _ in range(GRACE.page_size * 2 + 1):  # newer charges push it past the first pages
            other = shop.customer()
            answer = await pay(service_settings, shop, other, str(shop.order(other)["id"]))
            assert answer["http_status"] == 201

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert len(simulator.transactions(invoice_number=order_id)) == 1

    async def test_an_error_answer_after_the_gateway_committed_is_reconciled_to_approved(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        simulator.add_fault("error_after_commit")

        answer = await pay(service_settings, shop, customer, order_id)
        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert (answer["http_status"], answer["status"]) == (202, "unknown")
        assert report.results[answer["id"]] is ReconcileResult.ADOPTED
        assert shop.db.get_order(order_id)["status"] == "paid"  # type: ignore[index]

    async def test_a_charge_in_a_batch_listed_by_merchant_local_dates_is_found(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        _, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")
        assert simulator.settle()["batchId"] is not None

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert await status_of(resources, payment_id) is PaymentStatus.APPROVED
        (entry,) = simulator.transactions(invoice_number=order_id)
        assert entry["status"] == "settledSuccessfully"

    async def test_a_matching_charge_that_names_no_attempt_stays_unknown_for_a_person(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # The answer was lost, and the only charge of that invoice, amount and card names no attempt
        # (made with the same invoice outside the pay flow): it may be ours, so never "not charged".
        _, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")
        simulator.reset()
        today = datetime.now(UTC).date()
        card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=today)
        outcome = await resources.gateway.charge(
            ChargeRequest(
                amount=Money.of("59.97"), payment_method=card, invoice_number=order_id, ref_id="VIRTUALTERMINAL1"
            )
        )
        assert outcome.result.transaction_id is not None
        unconfirmed_before = metrics.UNCONFIRMED_MATCHES._value.get()

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[payment_id] is ReconcileResult.UNCONFIRMED
        assert await status_of(resources, payment_id) is PaymentStatus.UNKNOWN
        assert metrics.UNCONFIRMED_MATCHES._value.get() == unconfirmed_before + 1
        async with resources.database.reading() as conn:
            payment = await payment_rows.fetch_payment(conn, payment_id)
        assert payment is not None
        assert payment.gateway is not None
        assert payment.gateway.transaction_id is None  # not adopted
        assert payment.gateway.message == UNCONFIRMED_MESSAGE.format(outcome.result.transaction_id)
        assert shop.db.get_order(order_id)["payment_status"] == "unknown"  # type: ignore[index]
        # Every later round leaves it as it is (and still never calls it "not charged").
        again = await reconciler_for(resources, after_grace()).reconcile_once()
        assert again.results[payment_id] is ReconcileResult.UNCONFIRMED
        async with resources.database.reading() as conn:
            unchanged = await payment_rows.fetch_payment(conn, payment_id)
        assert unchanged == payment


class TestCurrency:
    async def test_an_order_priced_beyond_its_currencys_minor_unit_is_refused_never_rounded(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer, currency="JPY")["id"])  # 3 x 19.99 JPY
        service = service_settings.model_copy(
            update={"gateway": service_settings.gateway.model_copy(update={"accepted_currencies": {"USD", "JPY"}})}
        )

        answer = await pay(service, shop, customer, order_id)

        assert (answer["http_status"], answer["code"]) == (409, "amount_precision_exceeds_currency")
        assert simulator.transactions(invoice_number=order_id) == []

    async def test_an_order_in_a_currency_the_merchant_does_not_take_is_refused_before_sending(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer, currency="EUR")["id"])

        answer = await pay(service_settings, shop, customer, order_id)

        assert (answer["http_status"], answer["code"]) == (409, "currency_not_accepted")
        assert simulator.transactions(invoice_number=order_id) == []

    async def test_the_orders_currency_is_sent_so_the_gateway_never_charges_it_in_dollars(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        # Configured to take EUR while the merchant account (the simulator) takes USD only: reason 39.
        customer = shop.customer()
        order_id = str(shop.order(customer, currency="EUR")["id"])
        service = service_settings.model_copy(
            update={"gateway": service_settings.gateway.model_copy(update={"accepted_currencies": {"EUR"}})}
        )

        answer = await pay(service, shop, customer, order_id)

        assert (answer["http_status"], answer["reason_code"], answer["payment"]["status"]) == (502, "39", "failed")
        assert simulator.transactions(invoice_number=order_id) == []


class TestBuildErrors:
    async def test_a_charge_that_cannot_be_built_is_refused_before_anything_is_sent(
        self, resources: Resources, simulator: SimulatorHandle
    ) -> None:
        simulator.reset()
        card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=datetime.now(UTC).date())
        request = ChargeRequest(
            amount=Money.of("10.00"),
            payment_method=card,
            invoice_number="BUILD-1",
            ref_id="BUILD1",
            tax_amount=Decimal("-1.00"),
        )

        with pytest.raises(ChargeRequestInvalid):
            await resources.gateway.charge(request)

        assert simulator.requests() == []


async def insert_unknown(
    resources: Resources,
    shop: Shop,
    *,
    ref_id: str,
    transaction_id: str | None = None,
    amount: Money = ORDER_TOTAL,
) -> tuple[str, str]:
    """An `unknown` attempt as the pay flow leaves it, for an order of a new customer; (order id, payment id)."""
    customer = shop.customer()
    order_id = str(shop.order(customer)["id"])
    now = datetime.now(UTC)
    payment = Payment(
        payment_id=f"pay_{ref_id}",
        order_id=order_id,
        customer_id=customer,
        status=PaymentStatus.UNKNOWN,
        amount=amount,
        invoice_number=order_id,
        ref_id=ref_id,
        card_last4="1111",
        card_brand="Visa",
        created_at=now,
        updated_at=now,
        sent_at=now,
        gateway=GatewayResult(transaction_id=transaction_id),
    )
    async with resources.database.transaction() as conn:
        await payment_rows.insert_payment(conn, payment, reason="attempt_created")
    return order_id, payment.payment_id


class TestReconcilerIsolation:
    async def test_one_payment_that_breaks_its_look_up_does_not_stop_the_others(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # A record whose transaction id the gateway client refuses to send (not digits) raises while
        # it is looked at; the lost charge after it must still be found in the same round.
        _, broken = await insert_unknown(resources, shop, ref_id="01BROKENRECORD0001", transaction_id="not-digits")
        _, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")
        failures_before = metrics.RECONCILER_PAYMENT_FAILURES._value.get()

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[broken] is ReconcileResult.ERROR
        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert shop.db.get_order(order_id)["status"] == "paid"  # type: ignore[index]
        assert await status_of(resources, broken) is PaymentStatus.UNKNOWN
        assert metrics.RECONCILER_PAYMENT_FAILURES._value.get() == failures_before + 1

    async def test_a_late_not_charged_leaves_an_order_a_newer_attempt_owns_alone(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # Attempt A is unknown and, meanwhile (say an operator resolved A as failed on one instance),
        # attempt B paid the order. The reconciler that then settles A must not write A over B.
        order_id, older = await insert_unknown(resources, shop, ref_id="01OLDERATTEMPT0001")
        async with resources.database.transaction() as conn:
            payment = await payment_rows.fetch_payment(conn, older)
            assert payment is not None
            newer = replace(
                payment,
                payment_id="pay_01NEWERATTEMPT001",
                ref_id="01NEWERATTEMPT001",
                status=PaymentStatus.FAILED,
                created_at=payment.created_at + timedelta(seconds=1),
            )
            await payment_rows.insert_payment(conn, newer, reason="attempt_created")
        await resources.db_service.update_order_payment(order_id, status="declined", payment_id=newer.payment_id)

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[older] is ReconcileResult.NOT_CHARGED
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["payment_id"], order["payment_status"]) == (newer.payment_id, "declined")


class TestRaces:
    async def test_two_reconcilers_on_one_store_adopt_a_lost_charge_once(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        _, order_id, payment_id = await pay_lost(service_settings, shop, simulator, "stall_after_commit")
        async with open_resources(service_settings) as other:
            one, two = reconciler_for(resources, after_grace()), reconciler_for(other, after_grace())

            reports = await asyncio.gather(one.reconcile_once(), two.reconcile_once())

        results = sorted(report.results[payment_id].value for report in reports if payment_id in report.results)
        assert results in (["adopted"], ["adopted", "conflict"])
        rows = store_rows(service_settings, "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq", order_id)
        assert [row[0] for row in rows] == ["payment.approved", "order.paid"]
        assert len(simulator.transactions(invoice_number=order_id)) == 1

    async def test_a_same_key_retry_with_another_card_of_the_same_brand_and_last_four_is_refused(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        headers = shop.auth(customer, key="same-key-other-card")
        async with app_client(create_app(service_settings)) as client:
            first = await client.post("/payments/pay", json=card_body(order_id, number=VISA_1881), headers=headers)
            again = await client.post(
                "/payments/pay", json=card_body(order_id, number=OTHER_VISA_1881), headers=headers
            )

        assert first.status_code == 201
        assert (again.status_code, again.json()["code"]) == (422, "idempotency_key_reused")
        assert len(simulator.transactions(invoice_number=order_id)) == 1

    async def test_two_api_instances_on_one_store_charge_an_order_once(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        async with app_client(create_app(service_settings)) as one, app_client(create_app(service_settings)) as two:
            answers = await asyncio.gather(
                one.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key="first")),
                two.post(
                    "/payments/pay",
                    json=card_body(order_id, number=MASTERCARD),
                    headers=shop.auth(customer, key="second"),
                ),
            )

        assert sorted(answer.status_code for answer in answers) == [201, 409]
        assert len(simulator.transactions(invoice_number=order_id)) == 1


class TestCrashes:
    async def test_a_charge_sent_by_a_process_that_died_is_adopted_despite_the_gateway_clock_behind(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # The process persisted the attempt, sent the charge, and died before recording the answer.
        order_id, payment_id = await insert_unknown(resources, shop, ref_id="01DIEDAFTERSEND001")
        async with resources.database.transaction() as conn:
            attempt = await payment_rows.fetch_payment(conn, payment_id)
            assert attempt is not None
            processing = replace(attempt, status=PaymentStatus.PROCESSING, gateway=None, version=attempt.version + 1)
            await payment_rows.update_payment(conn, processing, previous=attempt, reason="test_crash")
        card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=datetime.now(UTC).date())
        outcome = await resources.gateway.charge(
            ChargeRequest(
                amount=attempt.amount,
                payment_method=card,
                invoice_number=order_id,
                ref_id=attempt.ref_id,
                customer_id=attempt.customer_id,
                description=describe_attempt(attempt.ref_id, order_id),
            )
        )
        assert outcome.result.transaction_id is not None

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert await status_of(resources, payment_id) is PaymentStatus.APPROVED
        assert shop.db.get_order(order_id)["status"] == "paid"  # type: ignore[index]

    async def test_an_attempt_that_never_reached_the_gateway_is_still_not_charged_after_the_grace(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # The search is wide (skew margin, every page): it must still let a never-sent attempt go.
        order_id, payment_id = await insert_unknown(resources, shop, ref_id="01NEVERSENT0000001")
        for _ in range(GRACE.page_size + 1):
            other = shop.customer()
            assert (await pay(service_settings, shop, other, str(shop.order(other)["id"])))["http_status"] == 201

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        assert report.results[payment_id] is ReconcileResult.NOT_CHARGED
        assert await status_of(resources, payment_id) is PaymentStatus.FAILED
        assert simulator.transactions(invoice_number=order_id) == []


class TestGatewayLookUpsByRefId:
    async def test_a_charge_is_found_by_its_ref_id_without_transref_id(
        self, resources: Resources, simulator: SimulatorHandle
    ) -> None:
        card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=datetime.now(UTC).date())
        request = ChargeRequest(
            amount=Money.of("12.34"),
            payment_method=card,
            invoice_number="LOOKUP-1",
            ref_id="01LOOKUPBYREF00001",
            description=describe_attempt("01LOOKUPBYREF00001", "LOOKUP-1"),
        )
        outcome = await resources.gateway.charge(request)

        found = await resources.gateway.fetch_unsettled_transaction_by_ref_id(
            request.ref_id, invoice_number="LOOKUP-1", page_size=2
        )
        assert simulator.settle()["batchId"] is not None
        settled = await resources.gateway.fetch_settled_transaction_by_ref_id(
            request.ref_id, invoice_number="LOOKUP-1", submitted_after=datetime.now(UTC) - timedelta(hours=1)
        )

        assert found is not None
        assert found.ref_id is None  # strict: not echoed
        assert found.transaction_id == outcome.result.transaction_id
        assert settled is not None
        assert settled.transaction_id == outcome.result.transaction_id


class TestThreeDecimalCurrency:
    async def test_a_lost_kwd_charge_is_sent_to_the_fils_and_matched_by_its_exact_amount(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # Formerly sent as 1.24 (rounded to cents): the reconciler then never matched 1.235 and failed it.
        amount = Money(Decimal("1.235"), "KWD")
        order_id, payment_id = await insert_unknown(resources, shop, ref_id="01KWDATTEMPT00001", amount=amount)
        card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=datetime.now(UTC).date())
        outcome = await resources.gateway.charge(
            ChargeRequest(
                amount=amount,
                payment_method=card,
                invoice_number=order_id,
                ref_id="01KWDATTEMPT00001",
                description=describe_attempt("01KWDATTEMPT00001", order_id),
            )
        )
        assert outcome.result.transaction_id is not None

        report = await reconciler_for(resources, after_grace()).reconcile_once()

        (entry,) = simulator.transactions(invoice_number=order_id)
        assert Decimal(entry["amount"]) == Decimal("1.235")
        assert report.results[payment_id] is ReconcileResult.ADOPTED
        assert await status_of(resources, payment_id) is PaymentStatus.APPROVED
