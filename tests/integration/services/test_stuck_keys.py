"""When the request that charged does not record the answer itself.

A request that died after sending leaves its Idempotency-Key in flight: retries with the key wait
while the attempt is in progress, then are answered from the payment once the reconciler settled it,
not refused until the key expires. A request whose gateway answer came after the reconciler had
already settled the attempt answers the reconciler's record, and a replay answers the same.
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from payment_service.api.app import create_app
from payment_service.domain.money import Money
from payment_service.domain.payments import CardDetails, GatewayResult, Payment, PaymentStatus
from payment_service.resources import Resources
from payment_service.services.payments import PayCommand, invoice_number_for
from payment_service.services.reconciliation import Reconciler
from payment_service.settings import ReconcilerSettings, Settings
from payment_service.store import idempotency
from payment_service.store import payments as payment_rows
from payment_service.store.idempotency import IdempotencyKey
from tests.integration.conftest import VISA, Shop, app_client, card_body, store_rows
from tests.support.events import wait_until
from tests.support.simulator import ManualClock, SimulatorHandle

KEY = "retry-after-crash-1"


async def leave_key_in_flight(resources: Resources, *, customer_id: str, order_id: str) -> Payment:
    """What a request that died right after sending its charge leaves behind: the claimed key and the attempt."""
    now = datetime.now(UTC)
    card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=now.date())
    secret = Settings().api.fingerprint_secret.get_secret_value().encode()  # the default, as the tests' settings
    fingerprint = PayCommand(order_id=order_id, payment_method=card).fingerprint(secret)
    attempt = Payment(
        payment_id="pay_01STUCKKEY0000001",
        order_id=order_id,
        customer_id=customer_id,
        status=PaymentStatus.PROCESSING,
        amount=Money.of("59.97"),
        invoice_number=invoice_number_for(order_id),
        ref_id="01STUCKKEY0000001",
        card_last4="1111",
        card_brand="Visa",
        created_at=now,
        updated_at=now,
        sent_at=now,
    )
    async with resources.database.transaction() as conn:
        await idempotency.claim_key(
            conn,
            IdempotencyKey(customer_id, KEY),
            fingerprint=fingerprint,
            now=now,
            expires_at=now + timedelta(hours=24),
            payment_id=attempt.payment_id,
        )
        await payment_rows.insert_payment(conn, attempt, reason="attempt_created")
    return attempt


class TestStuckIdempotencyKey:
    async def test_a_retry_waits_while_the_attempt_is_in_progress_then_gets_the_settled_payment(
        self, service_settings: Settings, resources: Resources, shop: Shop
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        attempt = await leave_key_in_flight(resources, customer_id=customer, order_id=order_id)

        async with app_client(create_app(service_settings)) as client:
            while_processing = await client.post(
                "/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key=KEY)
            )
            # The reconciler adopts the charge it found at the gateway; the key stays as the dead request left it.
            settled = replace(
                attempt,
                status=PaymentStatus.APPROVED,
                version=2,
                gateway=GatewayResult(transaction_id="80000000042", response_code="1", account_number="XXXX1111"),
            )
            async with resources.database.transaction() as conn:
                await payment_rows.update_payment(conn, settled, previous=attempt, reason="reconciled")
            after_settling = await client.post(
                "/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key=KEY)
            )

        assert while_processing.status_code == 409
        assert while_processing.json()["code"] == "idempotency_key_in_flight"
        assert after_settling.status_code == 201, after_settling.text
        assert after_settling.headers["Idempotent-Replayed"] == "true"
        body = after_settling.json()
        assert (body["id"], body["status"]) == (attempt.payment_id, "approved")
        assert body["gateway"]["transaction_id"] == "80000000042"


class TestAnswerAfterTheReconciler:
    async def test_an_approval_read_after_the_reconciler_adopted_it_answers_the_reconcilers_record(
        self, service_settings: Settings, resources: Resources, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        # The gateway commits the charge, then holds its answer long enough for the reconciler to run.
        simulator.add_fault("stall_after_commit", stall_s=3.0)
        settings = service_settings.model_copy(
            update={"gateway": service_settings.gateway.model_copy(update={"read_timeout_s": 8.0})}
        )
        reconciler = Reconciler(
            database=resources.database,
            gateway=resources.gateway,
            db_service=resources.db_service,
            settings=ReconcilerSettings(processing_grace_s=60, not_found_grace_s=600),
            clock=ManualClock(datetime.now(UTC) + timedelta(minutes=5)),  # the attempt looks stale
        )

        async def charged() -> bool:
            ledger = await asyncio.to_thread(simulator.transactions, invoice_number=order_id)
            return len(ledger) == 1

        async with app_client(create_app(settings)) as client:
            paying = asyncio.create_task(
                client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key=KEY))
            )
            await wait_until(charged, timeout_s=5)
            report = await reconciler.reconcile_once()
            response = await paying
            replay = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer, key=KEY))

        ledger = simulator.transactions(invoice_number=order_id)
        assert len(report.changed) == 1
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "approved"
        assert response.json()["gateway"]["transaction_id"] == ledger[0]["transId"]
        assert (replay.status_code, replay.json()) == (201, response.json())
        assert replay.headers["Idempotent-Replayed"] == "true"
        events = store_rows(settings, "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq", order_id)
        assert [row[0] for row in events] == ["payment.approved", "order.paid"]  # the reconciler's, once
