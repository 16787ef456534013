"""Payments in currencies without cents, through the API, Kafka and the worker, recorded at the db-service."""

import asyncio
from collections.abc import Iterator

import pytest

from payment_service.api.app import create_app
from payment_service.settings import Settings
from tests.integration.conftest import Shop, app_client
from tests.integration.messaging.test_end_to_end import (
    DEADLINE_S,
    data,
    outbox_drained,
    running_worker,
    with_kafka,
)
from tests.support.events import fresh_kafka_settings, read_topic, wait_until
from tests.support.simulator import SimulatorHandle, run_simulator

CURRENCIES = frozenset({"USD", "KWD"})


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator(accepted_currencies=CURRENCIES) as handle:
        yield handle


@pytest.fixture
def service_settings(service_settings: Settings) -> Settings:
    gateway = service_settings.gateway.model_copy(update={"accepted_currencies": CURRENCIES})
    return service_settings.model_copy(update={"gateway": gateway})


class TestThreeDecimalCurrencies:
    async def test_a_kwd_payment_and_its_partial_refund_are_recorded_at_the_db_service_to_the_fils(
        self, service_settings: Settings, shop: Shop, kafka_bootstrap: str, simulator: SimulatorHandle
    ) -> None:
        kafka = await fresh_kafka_settings(kafka_bootstrap)
        settings = with_kafka(service_settings, kafka)
        customer = shop.customer()
        lamp = shop.db.create_product("Brass lamp", "1.24")
        order_id = str(shop.db.create_order(customer, [(str(lamp["id"]), 1)], currency="KWD")["id"])
        card = {"number": "4111111111111111", "expiration": "2031-12", "cvv": "123"}
        admin = shop.auth("staff-1", roles=("admin",))

        async with app_client(create_app(settings)) as client, running_worker(settings):
            paid = await client.post(
                "/payments/pay", json={"order_id": order_id, "payment": {"card": card}}, headers=shop.auth(customer)
            )
            assert paid.status_code == 201, paid.text
            payment_id = paid.json()["id"]
            simulator.settle()
            refund = await client.post(f"/payments/{payment_id}/refunds", json={"amount": "0.617"}, headers=admin)
            assert refund.status_code == 201, refund.text

            async def partially_refunded_at_db_service() -> bool:
                stored = await asyncio.to_thread(shop.db.get_payment, payment_id)
                return stored is not None and stored["status"] == "partially_refunded"

            await wait_until(partially_refunded_at_db_service, timeout_s=DEADLINE_S)
            await wait_until(lambda: outbox_drained(settings), timeout_s=DEADLINE_S)

        payments = await read_topic(kafka_bootstrap, kafka.payment_topic, at_least=2)
        assert [(data(r)["amount"], data(r)["refunded_amount"]) for r in payments] == [
            ("1.240", None),
            ("1.240", "0.617"),
        ]
        stored = shop.db.get_payment(payment_id)
        assert stored is not None
        assert (stored["amount"], stored["currency"], stored["refunded_amount"]) == ("1.240", "KWD", "0.617")
        assert await read_topic(kafka_bootstrap, kafka.dlq_topic) == []
