"""Notifications are applied from the store: whoever stored one, a later process applies it."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from authorize_net_simulator.webhooks import sign
from payment_service.api.app import create_app
from payment_service.domain.payments import PaymentStatus
from payment_service.resources import Resources
from payment_service.services.reconciliation import Reconciler
from payment_service.services.refunds import RefundService
from payment_service.services.webhooks import WebhookService
from payment_service.settings import Settings
from payment_service.store import payments as payment_rows
from payment_service.store.webhooks import claim_unprocessed
from tests.integration.conftest import Shop, app_client, card_body, store_rows
from tests.support.simulator import SimulatorHandle


def webhook_service(resources: Resources, clock: Callable[[], datetime] | None = None) -> WebhookService:
    settings = resources.settings
    reconciler = Reconciler(
        database=resources.database,
        gateway=resources.gateway,
        db_service=resources.db_service,
        settings=settings.reconciler,
    )
    refunds = RefundService(
        database=resources.database,
        db_service=resources.db_service,
        gateway=resources.gateway,
        idempotency_ttl_s=60,
    )
    return WebhookService(
        database=resources.database,
        gateway=resources.gateway,
        reconciler=reconciler,
        refunds=refunds,
        settings=settings.webhooks,
        signature_key=settings.gateway.signature_key.get_secret_value(),
        clock=clock,
    )


async def held_payment_approved_at_the_gateway(
    settings: Settings, shop: Shop, simulator: SimulatorHandle
) -> tuple[str, dict[str, Any]]:
    customer = shop.customer()
    order_id = str(shop.order(customer)["id"])
    simulator.add_fault("held_for_review")
    async with app_client(create_app(settings)) as client:
        response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
    body: dict[str, Any] = response.json()
    assert body["status"] == "held_for_review"
    simulator.review(body["gateway"]["transaction_id"], approve=True)
    return order_id, body


def fraud_approved(transaction_id: str) -> bytes:
    return orjson.dumps(
        {
            "notificationId": str(uuid.uuid4()),
            "eventType": "net.authorize.payment.fraud.approved",
            "payload": {"entityName": "transaction", "id": transaction_id},
        }
    )


async def status_of(resources: Resources, payment_id: str) -> PaymentStatus:
    async with resources.database.reading() as conn:
        payment = await payment_rows.fetch_payment(conn, payment_id)
    assert payment is not None
    return payment.status


def outbox_types(settings: Settings, order_id: str) -> list[str]:
    return [
        row[0] for row in store_rows(settings, "SELECT event_type FROM outbox WHERE key = ? ORDER BY seq", order_id)
    ]


class TestProcessingFromTheStore:
    async def test_a_notification_stored_by_a_process_that_died_is_applied_by_the_next_sweep(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        order_id, body = await held_payment_approved_at_the_gateway(service_settings, shop, simulator)
        sent = fraud_approved(body["gateway"]["transaction_id"])

        # Stored and answered, then the process stops before applying it.
        assert await webhook_service(resources).receive(sent, signature=sign(sent, simulator.signature_key))
        stored_only = await status_of(resources, body["id"])
        applied = await webhook_service(resources).process_pending()
        again = await webhook_service(resources).process_pending()

        assert stored_only is PaymentStatus.HELD_FOR_REVIEW
        assert (applied, again) == (1, 0)
        assert await status_of(resources, body["id"]) is PaymentStatus.APPROVED
        assert outbox_types(service_settings, order_id) == ["payment.held_for_review", "payment.approved", "order.paid"]
        assert store_rows(service_settings, "SELECT outcome, attempts FROM webhook_notifications") == [("applied", 1)]

    async def test_a_notification_leased_by_a_processor_that_died_waits_for_its_lease(
        self, service_settings: Settings, shop: Shop, simulator: SimulatorHandle, resources: Resources
    ) -> None:
        _, body = await held_payment_approved_at_the_gateway(service_settings, shop, simulator)
        sent = fraud_approved(body["gateway"]["transaction_id"])
        await webhook_service(resources).receive(sent, signature=sign(sent, simulator.signature_key))
        now = datetime.now(UTC)
        lease_s = service_settings.webhooks.lease_s
        async with resources.database.transaction() as conn:
            taken = await claim_unprocessed(conn, limit=10, now=now, lease_until=now + timedelta(seconds=lease_s))

        during_lease = await webhook_service(resources, clock=lambda: now + timedelta(seconds=1)).process_pending()
        after_lease = await webhook_service(
            resources, clock=lambda: now + timedelta(seconds=lease_s + 1)
        ).process_pending()

        assert len(taken) == 1
        assert (during_lease, after_lease) == (0, 1)
        assert await status_of(resources, body["id"]) is PaymentStatus.APPROVED
