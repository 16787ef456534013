"""Ways a real charge could be lost, doubled or misstated, tried against the strict simulator.

The simulator here runs in strict mode: transaction details without `transrefId` or `requestedAmount`,
lists without `totalNumInResultSet`, settled-batch dates read as US Pacific wall time. Each test
makes the money path go wrong the way it went wrong before, and checks what a customer and an
operator would see: the gateway's ledger, the stored payment, the order.
"""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.api.app import create_app
from payment_service.domain.errors import ChargeRequestInvalid
from payment_service.domain.money import Money
from payment_service.domain.payments import CardDetails, ChargeRequest, PaymentStatus
from payment_service.resources import Resources, open_resources
from payment_service.services import metrics
from payment_service.services.reconciliation import Reconciler, ReconcileResult
from payment_service.settings import GatewaySettings, ReconcilerSettings, Settings
from payment_service.store import payments as payment_rows
from tests.integration.conftest import MASTERCARD, VISA, Shop, app_client, build_settings, card_body
from tests.support.db_service import DbServiceHandle
from tests.support.simulator import ManualClock, SimulatorHandle, run_simulator

SKEW = timedelta(minutes=7)  # the gateway's clock behind ours
GRACE = ReconcilerSettings(interval_s=0.01, processing_grace_s=60, not_found_grace_s=600, page_size=2)


def gateway_clock() -> datetime:
    return datetime.now(UTC) - SKEW


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(strict=True, clock=gateway_clock) as handle:
        yield handle


@pytest.fixture
def service_settings(tmp_path: Any, simulator: SimulatorHandle, db_service: DbServiceHandle) -> Settings:
    return build_settings(tmp_path, simulator, db_service)


@pytest.fixture
async def resources(service_settings: Settings) -> AsyncIterator[Resources]:
    async with open_resources(service_settings) as opened:
        yield opened


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


def short_read(settings: Settings) -> Settings:
    return settings.model_copy(update={"gateway": settings.gateway.model_copy(update={"read_timeout_s": 0.3})})


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
        # Measured and exported: the gateway's submit time is about 7 minutes before our sending time.
        assert reconciler.clock_skew_s is not None
        assert -SKEW.total_seconds() - 5 < reconciler.clock_skew_s < -SKEW.total_seconds() + 5
        assert metrics.GATEWAY_CLOCK_SKEW._value.get() == reconciler.clock_skew_s

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
