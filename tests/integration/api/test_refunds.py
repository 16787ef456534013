"""`POST/GET /payments/{id}/refunds` end to end: the app in-process, the simulator and the reference db-service.

Voids before settlement, refunds after (`/_sim/settle`), and the guard that never gives back more than
was captured, checked in the simulator's ledger and the local store.
"""

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest

from payment_service.api.app import create_app
from payment_service.api.auth import mint_token
from payment_service.settings import Settings
from tests.integration.conftest import Shop, app_client, store_rows
from tests.support.refunds import outbox_types, paid, refunds_in_ledger
from tests.support.simulator import SimulatorHandle

ADMIN = "staff-1"


def admin(shop: Shop, *, key: str | None = None) -> dict[str, str]:
    return shop.auth(ADMIN, key=key, roles=("admin",))


def ledger_of(simulator: SimulatorHandle, transaction_id: str) -> dict[str, Any]:
    return next(t for t in simulator.transactions() if t["transId"] == transaction_id)


class TestVoidBeforeSettlement:
    async def test_an_unsettled_payment_is_voided_whole_and_published(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        payment = await paid(api_client, shop)

        response = await api_client.post(f"/payments/{payment['id']}/refunds", json={}, headers=admin(shop))

        assert response.status_code == 201, response.text
        refund = response.json()
        assert (refund["kind"], refund["status"], refund["amount"]) == ("void", "succeeded", "100.00")
        assert ledger_of(simulator, payment["gateway"]["transaction_id"])["status"] == "voided"
        current = (await api_client.get(f"/payments/{payment['id']}", headers=admin(shop))).json()
        assert (current["status"], current["refunded_amount"]) == ("voided", "100.00")
        assert outbox_types(service_settings, payment["order_id"]) == [
            "payment.approved",
            "order.paid",
            "payment.voided",
            "order.refunded",
        ]
        assert shop.db.get_order(payment["order_id"])["payment_status"] == "voided"  # type: ignore[index]
        listed = (await api_client.get(f"/payments/{payment['id']}/refunds", headers=admin(shop))).json()
        assert [r["id"] for r in listed] == [refund["id"]]

    async def test_a_partial_amount_before_settlement_is_409_saying_what_to_do_and_sends_nothing(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        payment = await paid(api_client, shop)
        before = len(simulator.transactions())

        response = await api_client.post(
            f"/payments/{payment['id']}/refunds", json={"amount": "40.00"}, headers=admin(shop)
        )

        assert response.status_code == 409
        problem = response.json()
        assert problem["code"] == "partial_refund_before_settlement"
        assert "void" in problem["detail"]
        assert "settle" in problem["detail"]
        assert len(simulator.transactions()) == before
        assert ledger_of(simulator, payment["gateway"]["transaction_id"])["status"] == "capturedPendingSettlement"


class TestRefundAfterSettlement:
    async def test_a_partial_then_the_rest_refunds_the_payment_fully(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"

        first = await api_client.post(url, json={"amount": "30.00", "reason": "one item returned"}, headers=admin(shop))
        assert first.status_code == 201, first.text
        assert (first.json()["kind"], first.json()["amount"]) == ("refund", "30.00")
        middle = (await api_client.get(f"/payments/{payment['id']}", headers=admin(shop))).json()
        assert (middle["status"], middle["refunded_amount"]) == ("partially_refunded", "30.00")

        rest = await api_client.post(url, headers=admin(shop))  # no body: all that is left
        assert rest.status_code == 201, rest.text
        assert rest.json()["amount"] == "70.00"

        current = (await api_client.get(f"/payments/{payment['id']}", headers=admin(shop))).json()
        assert (current["status"], current["refunded_amount"]) == ("refunded", "100.00")
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [
            Decimal("30.00"),
            Decimal("70.00"),
        ]
        assert outbox_types(service_settings, payment["order_id"])[2:] == [
            "payment.refunded",
            "order.refunded",
            "payment.refunded",
            "order.refunded",
        ]
        assert shop.db.get_order(payment["order_id"])["payment_status"] == "refunded"  # type: ignore[index]

    async def test_more_than_is_left_is_refused_and_sends_nothing(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"
        assert (await api_client.post(url, json={"amount": "80.00"}, headers=admin(shop))).status_code == 201

        response = await api_client.post(url, json={"amount": "20.01"}, headers=admin(shop))

        assert response.status_code == 422
        assert response.json()["code"] == "refund_not_allowed"
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("80.00")]

    async def test_two_concurrent_refunds_of_60_on_100_give_back_60_once(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"

        responses = await asyncio.gather(
            *(api_client.post(url, json={"amount": "60.00"}, headers=admin(shop)) for _ in range(2))
        )

        assert sorted(r.status_code for r in responses) == [201, 422]
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("60.00")]

    async def test_two_api_instances_on_one_store_never_refund_more_than_captured(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, service_settings: Settings
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"
        async with app_client(create_app(service_settings)) as other:
            responses = await asyncio.gather(
                *(
                    client.post(url, json={"amount": "35.00"}, headers=admin(shop))
                    for client in (api_client, other, api_client, other)
                )
            )

        assert Counter(r.status_code for r in responses) == {201: 2, 422: 2}
        assert sum(refunds_in_ledger(simulator, payment["gateway"]["transaction_id"])) == Decimal("70.00")


class TestRefundRequests:
    async def test_a_customer_may_not_refund_but_a_refund_scope_may(
        self, api_client: httpx.AsyncClient, shop: Shop, service_settings: Settings
    ) -> None:
        payment = await paid(api_client, shop)
        url = f"/payments/{payment['id']}/refunds"

        as_owner = await api_client.post(url, headers=shop.auth(payment["customer_id"]))
        service_token = mint_token(service_settings.auth, customer_id="back-office", scopes=("payments:refund",))
        as_service = await api_client.post(url, headers={"Authorization": f"Bearer {service_token}"})

        assert as_owner.status_code == 403
        assert as_service.status_code == 201
        owner_view = await api_client.get(url, headers=shop.auth(payment["customer_id"]))
        assert [r["kind"] for r in owner_view.json()] == ["void"]

    async def test_a_repeated_idempotency_key_replays_the_refund_and_sends_nothing_more(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle
    ) -> None:
        payment = await paid(api_client, shop)
        simulator.settle()
        url = f"/payments/{payment['id']}/refunds"
        body = {"amount": "10.00"}

        first = await api_client.post(url, json=body, headers=admin(shop, key="refund-1"))
        again = await api_client.post(url, json=body, headers=admin(shop, key="refund-1"))
        other = await api_client.post(url, json={"amount": "11.00"}, headers=admin(shop, key="refund-1"))

        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert other.status_code == 422
        assert refunds_in_ledger(simulator, payment["gateway"]["transaction_id"]) == [Decimal("10.00")]

    @pytest.mark.parametrize("amount", ["0", "-5", "1.001", "1e9999", "abc"])
    async def test_a_hostile_amount_is_422_and_changes_nothing(
        self, api_client: httpx.AsyncClient, shop: Shop, service_settings: Settings, amount: str
    ) -> None:
        payment = await paid(api_client, shop)

        response = await api_client.post(
            f"/payments/{payment['id']}/refunds", json={"amount": amount}, headers=admin(shop)
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert store_rows(service_settings, "SELECT count(*) FROM refunds") == [(0,)]

    async def test_an_unknown_payment_is_404(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        response = await api_client.post("/payments/pay_NOPE/refunds", headers=admin(shop))
        assert response.status_code == 404
