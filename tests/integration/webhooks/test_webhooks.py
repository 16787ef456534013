"""`POST /webhooks/authorizenet` against a real simulator that delivers its webhooks to a served API.

The module's simulator posts every notification to `api_port`, where each test serves the API (uvicorn)
when it needs the simulator's own deliveries; tests that post notifications themselves call the app
in-process, and the simulator's deliveries then meet a closed port and are dropped.
"""

import asyncio
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel

from authorize_net_simulator.webhooks import sign
from payment_service.api.app import create_app
from payment_service.domain.events import OrderPaid, OrderRefunded, PaymentRecorded
from payment_service.domain.money import Money
from payment_service.domain.payments import ChargeOutcomeKind
from payment_service.resources import open_resources
from payment_service.settings import Settings, WebhookSettings
from tests.conftest import free_tcp_ports
from tests.integration.conftest import Shop, app_client, card_body, store_rows
from tests.support.events import wait_until
from tests.support.servers import serve_app
from tests.support.simulator import SimulatorHandle, run_simulator

WEBHOOK_PATH = "/webhooks/authorizenet"


@pytest.fixture(scope="module")
def api_port() -> int:
    return free_tcp_ports(1)[0]


@pytest.fixture(scope="module")
def simulator(api_port: int) -> Iterator[SimulatorHandle]:
    with run_simulator(webhook_url=f"http://127.0.0.1:{api_port}{WEBHOOK_PATH}", webhook_backoff_ms=50) as handle:
        yield handle


@pytest.fixture
def settings(service_settings: Settings) -> Settings:
    fast = WebhookSettings(sweep_interval_s=0.1, retry_s=0.1, lease_s=5)
    gateway = service_settings.gateway.model_copy(update={"read_timeout_s": 0.5})
    return service_settings.model_copy(update={"webhooks": fast, "gateway": gateway})


def outbox_events(settings: Settings, order_id: str) -> list[tuple[str, bytes]]:
    """(type, data) of the order's outbox rows in order, each parsed against its event model."""
    rows = store_rows(settings, "SELECT event_type, data FROM outbox WHERE key = ? ORDER BY seq", order_id)
    for event_type, data in rows:
        models: dict[str, type[BaseModel]] = {"order.paid": OrderPaid, "order.refunded": OrderRefunded}
        model = models.get(event_type, PaymentRecorded)
        model.model_validate_json(data)
    return [(row[0], row[1]) for row in rows]


def outbox_types(settings: Settings, order_id: str) -> list[str]:
    return [event_type for event_type, _ in outbox_events(settings, order_id)]


def notification_rows(settings: Settings) -> list[tuple[Any, ...]]:
    return store_rows(settings, "SELECT notification_id, event_type, outcome FROM webhook_notifications")


def counted(result: str) -> float:
    return REGISTRY.get_sample_value("payment_service_webhook_notifications_total", {"result": result}) or 0.0


def signed(body: bytes, key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-ANET-Signature": sign(body, key)}


def notification(event_type: str, transaction_id: str, *, notification_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "notificationId": notification_id or str(uuid.uuid4()),
            "eventType": event_type,
            "eventDate": "2026-12-06T02:00:00.0000000Z",
            "webhookId": str(uuid.uuid4()),
            "payload": {"responseCode": 1, "entityName": "transaction", "id": transaction_id},
        }
    )


async def pay(
    client: httpx.AsyncClient, shop: Shop, *, price: str = "19.99", quantity: int = 3
) -> tuple[str, dict[str, Any]]:
    customer = shop.customer()
    order_id = str(shop.order(customer, price=price, quantity=quantity)["id"])
    response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
    assert response.status_code in (201, 202), response.text
    body: dict[str, Any] = response.json()
    return order_id, body


async def payment_status(client: httpx.AsyncClient, shop: Shop, payment_id: str) -> str:
    response = await client.get(f"/payments/{payment_id}", headers=shop.auth("ops", roles=("admin",)))
    status: str = response.json()["status"]
    return status


class TestGatewayDecisionsByWebhook:
    async def test_a_held_payment_approved_at_the_gateway_is_approved_with_one_order_paid(
        self, settings: Settings, shop: Shop, simulator: SimulatorHandle, api_port: int
    ) -> None:
        simulator.add_fault("held_for_review")
        with serve_app(create_app(settings), port=api_port) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                order_id, body = await pay(client, shop)
                assert body["status"] == "held_for_review"

                simulator.review(body["gateway"]["transaction_id"], approve=True)

                async def approved() -> bool:
                    return await payment_status(client, shop, body["id"]) == "approved"

                await wait_until(approved, timeout_s=15)

        assert outbox_types(settings, order_id) == ["payment.held_for_review", "payment.approved", "order.paid"]
        outcomes = {event: outcome for _, event, outcome in notification_rows(settings)}
        assert outcomes["net.authorize.payment.fraud.approved"] == "applied"
        assert shop.db.get_order(order_id)["status"] == "paid"  # type: ignore[index]

    async def test_a_held_payment_declined_at_the_gateway_is_closed_without_order_paid(
        self, settings: Settings, shop: Shop, simulator: SimulatorHandle, api_port: int
    ) -> None:
        simulator.add_fault("held_for_review")
        with serve_app(create_app(settings), port=api_port) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                order_id, body = await pay(client, shop)
                simulator.review(body["gateway"]["transaction_id"], approve=False)

                async def decided() -> bool:
                    return await payment_status(client, shop, body["id"]) != "held_for_review"

                await wait_until(decided, timeout_s=15)
                status = await payment_status(client, shop, body["id"])

        # Authorised and held (reason 253), then declined: the gateway voids the authorisation.
        assert status == "voided"
        assert outbox_types(settings, order_id) == ["payment.held_for_review", "payment.voided"]

    async def test_an_unknown_charge_is_adopted_from_its_authcapture_notification(
        self, settings: Settings, shop: Shop, simulator: SimulatorHandle, api_port: int
    ) -> None:
        # The answer stalls past the read time-out: the payment is `unknown`, and no reconciler runs here.
        simulator.add_fault("stall_after_commit", stall_s=3)
        with serve_app(create_app(settings), port=api_port) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                order_id, body = await pay(client, shop)
                assert body["status"] == "unknown"

                async def approved() -> bool:
                    return await payment_status(client, shop, body["id"]) == "approved"

                await wait_until(approved, timeout_s=15)

        assert outbox_types(settings, order_id) == ["payment.approved", "order.paid"]
        outcomes = {event: outcome for _, event, outcome in notification_rows(settings)}
        assert outcomes["net.authorize.payment.authcapture.created"] == "applied"


class TestRefundsMadeAtTheGateway:
    async def test_a_refund_made_directly_at_the_simulator_arrives_by_webhook_and_is_recorded(
        self, settings: Settings, shop: Shop, simulator: SimulatorHandle, api_port: int
    ) -> None:
        with serve_app(create_app(settings), port=api_port) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                order_id, body = await pay(client, shop, price="100.00", quantity=1)
                simulator.settle()
                # As staff would in the merchant interface: straight at the gateway, not through the service.
                async with open_resources(settings) as resources:
                    made = await resources.gateway.refund(
                        body["gateway"]["transaction_id"], Money(Decimal("40.00"), "USD"), card_last4="1111"
                    )
                assert made.kind is ChargeOutcomeKind.APPROVED

                async def refunded() -> bool:
                    return await payment_status(client, shop, body["id"]) == "partially_refunded"

                await wait_until(refunded, timeout_s=15)
                listed = (
                    await client.get(f"/payments/{body['id']}/refunds", headers=shop.auth("ops", roles=("admin",)))
                ).json()

        assert outbox_types(settings, order_id) == [
            "payment.approved",
            "order.paid",
            "payment.refunded",
            "order.refunded",
        ]
        rows = store_rows(settings, "SELECT kind, amount, origin, transaction_id FROM refunds")
        assert rows == [("refund", "40.00", "gateway", made.result.transaction_id)]
        assert len(listed) == 1
        outcomes = {event: outcome for _, event, outcome in notification_rows(settings)}
        assert outcomes["net.authorize.payment.refund.created"] == "applied"

    async def test_a_void_made_directly_at_the_simulator_arrives_by_webhook_and_is_recorded(
        self, settings: Settings, shop: Shop, simulator: SimulatorHandle, api_port: int
    ) -> None:
        with serve_app(create_app(settings), port=api_port) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                order_id, body = await pay(client, shop, price="100.00", quantity=1)
                async with open_resources(settings) as resources:
                    made = await resources.gateway.void(body["gateway"]["transaction_id"])
                assert made.kind is ChargeOutcomeKind.APPROVED

                async def voided() -> bool:
                    return await payment_status(client, shop, body["id"]) == "voided"

                await wait_until(voided, timeout_s=15)

        assert outbox_types(settings, order_id) == [
            "payment.approved",
            "order.paid",
            "payment.voided",
            "order.refunded",
        ]
        assert store_rows(settings, "SELECT kind, amount, origin FROM refunds") == [("void", "100.00", "gateway")]


class TestNotificationDelivery:
    async def test_the_same_notification_twice_is_stored_and_applied_once(
        self, settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        simulator.add_fault("held_for_review")
        async with app_client(create_app(settings)) as client:
            order_id, body = await pay(client, shop)
            transaction_id = body["gateway"]["transaction_id"]
            simulator.review(transaction_id, approve=True)
            sent = notification(
                "net.authorize.payment.fraud.approved", transaction_id, notification_id=str(uuid.uuid4())
            )
            headers = signed(sent, simulator.signature_key)
            duplicates = counted("duplicate")

            answers = await asyncio.gather(
                client.post(WEBHOOK_PATH, content=sent, headers=headers),
                client.post(WEBHOOK_PATH, content=sent, headers=headers),
            )

            async def processed() -> bool:
                return [row[2] for row in notification_rows(settings)] == ["applied"]

            await wait_until(processed, timeout_s=15)
            again = await client.post(WEBHOOK_PATH, content=sent, headers=headers)
            status = await payment_status(client, shop, body["id"])

        assert [answer.status_code for answer in answers] == [200, 200]
        assert again.status_code == 200
        assert status == "approved"
        assert len(notification_rows(settings)) == 1
        assert counted("duplicate") == duplicates + 2
        assert outbox_types(settings, order_id) == ["payment.held_for_review", "payment.approved", "order.paid"]
        transitions = store_rows(
            settings, "SELECT to_status FROM payment_transitions WHERE payment_id = ? ORDER BY seq", body["id"]
        )
        assert [row[0] for row in transitions] == ["processing", "held_for_review", "approved"]

    async def test_a_notification_about_a_settled_payment_changes_nothing(
        self, settings: Settings, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        async with app_client(create_app(settings)) as client:
            order_id, body = await pay(client, shop)
            sent = notification("net.authorize.payment.authcapture.created", body["gateway"]["transaction_id"])
            response = await client.post(WEBHOOK_PATH, content=sent, headers=signed(sent, simulator.signature_key))

            async def processed() -> bool:
                return [row[2] for row in notification_rows(settings)] == ["unchanged"]

            await wait_until(processed, timeout_s=15)

        assert response.status_code == 200
        assert outbox_types(settings, order_id) == ["payment.approved", "order.paid"]

    async def test_an_unknown_event_type_is_stored_and_ignored(
        self, settings: Settings, simulator: SimulatorHandle
    ) -> None:
        sent = notification("net.authorize.customer.created", "1")
        async with app_client(create_app(settings)) as client:
            response = await client.post(WEBHOOK_PATH, content=sent, headers=signed(sent, simulator.signature_key))

            async def processed() -> bool:
                return [row[2] for row in notification_rows(settings)] == ["ignored"]

            await wait_until(processed, timeout_s=15)

        assert response.status_code == 200


class TestRefusedNotifications:
    @pytest.mark.parametrize(
        "signature",
        [None, "sha512=" + "0" * 128, "sha256=abc", "sha512=not-hex-at-all"],
        ids=["missing", "wrong", "other-algorithm", "malformed"],
    )
    async def test_a_notification_without_a_valid_signature_is_401_and_not_stored(
        self, settings: Settings, signature: str | None
    ) -> None:
        sent = notification("net.authorize.payment.fraud.approved", "80000000001")
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-ANET-Signature"] = signature
        rejected = counted("rejected")
        async with app_client(create_app(settings)) as client:
            response = await client.post(WEBHOOK_PATH, content=sent, headers=headers)

        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "webhook_signature_invalid"
        assert notification_rows(settings) == []
        assert counted("rejected") == rejected + 1

    async def test_a_body_signed_with_another_key_is_401(self, settings: Settings) -> None:
        sent = notification("net.authorize.payment.fraud.approved", "80000000001")
        async with app_client(create_app(settings)) as client:
            response = await client.post(WEBHOOK_PATH, content=sent, headers=signed(sent, "B2" * 64))

        assert response.status_code == 401
        assert notification_rows(settings) == []

    async def test_a_body_above_the_bound_is_413_and_not_stored(
        self, settings: Settings, simulator: SimulatorHandle
    ) -> None:
        sent = b'{"padding": "' + b"x" * settings.webhooks.max_body_bytes + b'"}'
        async with app_client(create_app(settings)) as client:
            response = await client.post(WEBHOOK_PATH, content=sent, headers=signed(sent, simulator.signature_key))

        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"
        assert notification_rows(settings) == []

    async def test_a_signed_body_that_is_no_notification_is_422_and_not_stored(
        self, settings: Settings, simulator: SimulatorHandle
    ) -> None:
        sent = b'{"eventType": "net.authorize.payment.fraud.approved"}'
        async with app_client(create_app(settings)) as client:
            response = await client.post(WEBHOOK_PATH, content=sent, headers=signed(sent, simulator.signature_key))

        assert response.status_code == 422
        assert notification_rows(settings) == []
