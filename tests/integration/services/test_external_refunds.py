"""`RefundService.record_external_refund`: refunds and voids made outside the service, recorded once.

The refund or void is made straight at the simulator (as staff would in the merchant interface), its
details read back with `getTransactionDetails`, and handed to the service as a webhook handler would.
"""

from decimal import Decimal
from typing import Any

import httpx

from payment_service.domain.money import Money
from payment_service.domain.payments import ChargeOutcomeKind
from payment_service.resources import Resources
from payment_service.settings import Settings
from tests.integration.conftest import Shop, store_rows
from tests.support.refunds import outbox_types, paid, refund_service
from tests.support.simulator import SimulatorHandle


def rows(settings: Settings, payment_id: str) -> list[tuple[Any, ...]]:
    return store_rows(
        settings,
        "SELECT kind, amount, status, origin FROM refunds WHERE payment_id = ? ORDER BY created_at",
        payment_id,
    )


class TestRecordExternalRefund:
    async def test_a_refund_made_at_the_gateway_is_recorded_once_with_its_events(
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
        made = await resources.gateway.refund(charge_id, Money(Decimal("25.00"), "USD"), card_last4="1111")
        assert made.kind is ChargeOutcomeKind.APPROVED
        assert made.result.transaction_id is not None
        details = await resources.gateway.fetch_transaction_details(made.result.transaction_id)
        assert details is not None
        service = refund_service(resources)

        first = await service.record_external_refund(details)
        again = await service.record_external_refund(details)

        assert first is not None
        assert again == first
        assert rows(service_settings, payment["id"]) == [("refund", "25.00", "succeeded", "gateway")]
        current = (await api_client.get(f"/payments/{payment['id']}", headers=shop.auth(payment["customer_id"]))).json()
        assert (current["status"], current["refunded_amount"]) == ("partially_refunded", "25.00")
        assert outbox_types(service_settings, payment["order_id"])[2:] == ["payment.refunded", "order.refunded"]

    async def test_a_void_made_at_the_gateway_is_recorded_once(
        self,
        api_client: httpx.AsyncClient,
        shop: Shop,
        resources: Resources,
        service_settings: Settings,
    ) -> None:
        payment = await paid(api_client, shop)
        charge_id = payment["gateway"]["transaction_id"]
        assert (await resources.gateway.void(charge_id)).kind is ChargeOutcomeKind.APPROVED
        details = await resources.gateway.fetch_transaction_details(charge_id)
        assert details is not None
        service = refund_service(resources)

        await service.record_external_refund(details)
        await service.record_external_refund(details)

        assert rows(service_settings, payment["id"]) == [("void", "100.00", "succeeded", "gateway")]
        assert outbox_types(service_settings, payment["order_id"])[2:] == ["payment.voided", "order.refunded"]

    async def test_a_transaction_of_nobody_we_know_is_ignored(
        self, api_client: httpx.AsyncClient, shop: Shop, resources: Resources
    ) -> None:
        payment = await paid(api_client, shop)
        details = await resources.gateway.fetch_transaction_details(payment["gateway"]["transaction_id"])
        assert details is not None  # a charge, not voided: not a refund of anything

        assert await refund_service(resources).record_external_refund(details) is None
