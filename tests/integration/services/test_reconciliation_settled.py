"""The reconciler finds charges that settled before it looked: real simulator and db-service over HTTP.

A module of its own, so its settlements (which close every pending charge of the module's
simulator) never reach the charges of the other reconciler tests.
"""

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from payment_service.domain.charge_identity import describe_attempt
from payment_service.domain.money import Money
from payment_service.domain.payments import (
    CardDetails,
    ChargeOutcomeKind,
    ChargeRequest,
    GatewayResult,
    PaymentStatus,
)
from payment_service.resources import Resources
from payment_service.services.reconciliation import ReconcileResult
from payment_service.settings import Settings
from payment_service.store import payments as payment_rows
from tests.integration.conftest import VISA, Shop
from tests.integration.services.test_reconciliation import (
    GRACE,
    fetch,
    insert_attempt,
    outbox_types,
    pay_with_fault,
    reconciler_for,
    unique_ref_id,
)
from tests.support.simulator import ManualClock, SimulatorHandle, run_simulator


@pytest.fixture(scope="module", params=["lenient", "strict"])
def simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorHandle]:
    """Each test twice: against the simulator's generous answers, and against its strict ones (no
    `transrefId`, `requestedAmount` or `totalNumInResultSet`; settled-batch dates read as merchant-local)."""
    with run_simulator(strict=request.param == "strict") as handle:
        yield handle


def methods_received(simulator: SimulatorHandle, *, since: int) -> list[str]:
    """The API methods the simulator received after its first `since` requests."""
    return [next(iter(orjson.loads(entry["body"]))) for entry in simulator.requests()[since:]]


def visa_charge(*, amount: Money, invoice_number: str, ref_id: str) -> ChargeRequest:
    """A charge as the pay flow sends it: the attempt's id in the order description too."""
    card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=datetime.now(UTC).date())
    return ChargeRequest(
        amount=amount,
        payment_method=card,
        invoice_number=invoice_number,
        ref_id=ref_id,
        description=describe_attempt(ref_id, invoice_number),
    )


class TestReconcileSettledCharges:
    @pytest.mark.parametrize(
        "looked_after_s",
        [60, GRACE.not_found_grace_s + 100],
        ids=["within-the-grace", "after-the-grace"],
    )
    async def test_a_lost_answer_whose_charge_settled_before_the_reconciler_looked_is_adopted_as_approved(
        self,
        looked_after_s: float,
        service_settings: Settings,
        shop: Shop,
        simulator: SimulatorHandle,
        resources: Resources,
    ) -> None:
        order_id, body = await pay_with_fault(service_settings, shop, simulator, "stall_after_commit", stall_s=5)
        assert body["status"] == "unknown"
        (charged,) = simulator.transactions(invoice_number=order_id)
        # The worker was down across the nightly settlement: the charge left the unsettled list.
        assert charged["transId"] in simulator.settle()["settled"]
        sent_at = (await fetch(resources, body["id"])).sent_at
        assert sent_at is not None
        reconciler = reconciler_for(resources, ManualClock(sent_at + timedelta(seconds=looked_after_s)))

        report = await reconciler.reconcile_once()
        again = await reconciler.reconcile_once()

        assert report.results[body["id"]] is ReconcileResult.ADOPTED
        (ledger,) = simulator.transactions(invoice_number=order_id)
        assert (ledger["transId"], ledger["status"]) == (charged["transId"], "settledSuccessfully")
        payment = await fetch(resources, body["id"])
        assert payment.status is PaymentStatus.APPROVED
        assert payment.gateway is not None
        assert payment.gateway.transaction_id == charged["transId"]
        assert payment.gateway.auth_code
        assert payment.captured_amount == Decimal("59.97")
        assert outbox_types(service_settings, order_id) == ["payment.approved", "order.paid"]
        order = shop.db.get_order(order_id)
        assert order is not None
        assert (order["status"], order["payment_status"], order["payment_id"]) == ("paid", "approved", body["id"])
        assert body["id"] not in again.results

    async def test_a_never_sent_attempt_past_the_grace_is_still_not_charged_when_batches_hold_others(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        sent_at = datetime.now(UTC)
        ref_id = unique_ref_id()
        attempt = await insert_attempt(resources, shop, status=PaymentStatus.UNKNOWN, sent_at=sent_at, ref_id=ref_id)
        # Settled since the attempt: a charge of another invoice, and one of the same invoice, amount
        # and card sent by another attempt (another refId). Neither is this attempt's charge.
        others = [
            visa_charge(amount=attempt.amount, invoice_number=f"X{uuid.uuid4().hex[:12]}", ref_id=unique_ref_id()),
            visa_charge(amount=attempt.amount, invoice_number=attempt.invoice_number, ref_id=f"{ref_id[:-1]}Z"),
        ]
        for other in others:
            assert (await resources.gateway.charge(other)).kind is ChargeOutcomeKind.APPROVED
        settled = simulator.settle()
        assert settled["batchId"] is not None
        seen = len(simulator.requests())
        reconciler = reconciler_for(resources, ManualClock(sent_at + timedelta(seconds=GRACE.not_found_grace_s + 100)))

        report = await reconciler.reconcile_once()

        assert report.results[attempt.payment_id] is ReconcileResult.NOT_CHARGED
        failed = await fetch(resources, attempt.payment_id)
        assert (failed.status, failed.captured_amount) == (PaymentStatus.FAILED, Decimal(0))
        assert outbox_types(service_settings, attempt.order_id) == ["payment.failed"]
        # The settled batch was searched, and its same-invoice row confirmed (and refused) by its details.
        received = methods_received(simulator, since=seen)
        assert received[0] == "getUnsettledTransactionListRequest"
        assert "getSettledBatchListRequest" in received
        assert "getTransactionListRequest" in received
        assert received[-1] == "getTransactionDetailsRequest"
        assert len(simulator.transactions(invoice_number=attempt.invoice_number)) == 1  # the other attempt's

    async def test_a_duplicate_whose_unclaimed_original_settled_adopts_the_original(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        # The original charge went out from an attempt whose record was lost; it then settled.
        sent_at = datetime.now(UTC)
        attempt = await insert_attempt(
            resources, shop, status=PaymentStatus.PROCESSING, sent_at=sent_at, ref_id=unique_ref_id()
        )
        original = await resources.gateway.charge(
            visa_charge(amount=attempt.amount, invoice_number=attempt.invoice_number, ref_id=unique_ref_id())
        )
        assert original.kind is ChargeOutcomeKind.APPROVED
        # This attempt was answered "duplicate" (reason 11), without the original's transId.
        duplicate = replace(
            attempt,
            status=PaymentStatus.UNKNOWN,
            version=attempt.version + 1,
            gateway=GatewayResult(
                response_code="3", reason_code="11", message="A duplicate transaction has been submitted."
            ),
        )
        async with resources.database.transaction() as conn:
            await payment_rows.update_payment(conn, duplicate, previous=attempt, reason="duplicate_reported")
        simulator.settle()
        reconciler = reconciler_for(resources, ManualClock(sent_at + timedelta(seconds=GRACE.not_found_grace_s + 100)))

        report = await reconciler.reconcile_once()

        assert report.results[attempt.payment_id] is ReconcileResult.ADOPTED
        adopted = await fetch(resources, attempt.payment_id)
        assert adopted.status is PaymentStatus.APPROVED
        assert adopted.gateway is not None
        assert adopted.gateway.transaction_id == original.result.transaction_id
        assert outbox_types(service_settings, attempt.order_id) == ["payment.approved", "order.paid"]
        assert len(simulator.transactions(invoice_number=attempt.invoice_number)) == 1
