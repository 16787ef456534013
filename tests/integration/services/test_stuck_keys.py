"""An Idempotency-Key whose request died after sending, or lost its result to the reconciler.

The key was claimed for an attempt and never completed. Retries with the key must wait while the
attempt is in progress, then be answered from the payment once it is settled — not refused until the
key expires.
"""

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from payment_service.api.app import create_app
from payment_service.domain.money import Money
from payment_service.domain.payments import CardDetails, GatewayResult, Payment, PaymentStatus
from payment_service.resources import Resources, open_resources
from payment_service.services.payments import PayCommand, invoice_number_for
from payment_service.settings import Settings
from payment_service.store import idempotency
from payment_service.store import payments as payment_rows
from payment_service.store.idempotency import IdempotencyKey
from tests.integration.conftest import VISA, Shop, app_client, card_body

KEY = "retry-after-crash-1"


@pytest.fixture
async def resources(service_settings: Settings) -> AsyncIterator[Resources]:
    async with open_resources(service_settings) as opened:
        yield opened


async def leave_key_in_flight(resources: Resources, *, customer_id: str, order_id: str) -> Payment:
    """What a request that died right after sending its charge leaves behind: the claimed key and the attempt."""
    now = datetime.now(UTC)
    card = CardDetails.parse(number=VISA, expiration="2031-12", cvv="123", today=now.date())
    fingerprint = PayCommand(order_id=order_id, payment_method=card).fingerprint()
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
