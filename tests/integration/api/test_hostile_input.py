"""Hostile input at the edge: ids that would steer a db-service call, unbounded decimals, non-ASCII digits.

Each is refused with a 422 problem before anything is read, charged or written: the reference
db-service's request log and the simulator's ledger show nothing happened.
"""

import json

import httpx
import pytest

from tests.integration.conftest import Shop, card_body
from tests.support.db_service import DbServiceHandle
from tests.support.simulator import SimulatorHandle

HOSTILE_IDS = ["../customers/{customer}", "{order}/cancel", "{order}?x=1", "{order}#frag", "..", "\ud800", "%31"]


class TestHostileIds:
    @pytest.mark.parametrize("template", HOSTILE_IDS)
    async def test_an_id_that_could_change_the_url_is_refused_before_any_call(
        self, api_client: httpx.AsyncClient, shop: Shop, db_service: DbServiceHandle, template: str
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        hostile = template.format(customer=customer, order=order_id)
        db_service.requests.clear()

        # json.dumps writes a lone surrogate as its `\\ud800` escape, as a hostile client would.
        response = await api_client.post(
            "/payments/pay",
            content=json.dumps(card_body(hostile)),
            headers={**shop.auth(customer), "Content-Type": "application/json"},
        )

        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert db_service.requests == []
        assert shop.db.get_order(order_id)["payment_status"] == "unpaid"  # type: ignore[index]

    @pytest.mark.parametrize("hostile", ["..%2Fcustomers%2F42", "1001%3Fx%3D1", "%2E%2E"])
    async def test_reads_refuse_such_ids_too(
        self, api_client: httpx.AsyncClient, shop: Shop, db_service: DbServiceHandle, hostile: str
    ) -> None:
        headers = shop.auth(shop.customer())
        db_service.requests.clear()

        by_id = await api_client.get(f"/payments/{hostile}", headers=headers)
        by_order = await api_client.get("/payments", params={"order_id": hostile.replace("%2F", "/")}, headers=headers)

        assert by_id.status_code in (404, 422)  # an encoded `/` splits the path: no route, so 404
        assert by_order.status_code == 422
        assert db_service.requests == []


class TestBoundedDecimals:
    @pytest.mark.parametrize("amount", ["1E+1000000", "1E-1000000", "0.0000001", "1234567890123", 1e308])
    async def test_an_amount_out_of_bounds_is_refused_with_422(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, amount: str | float
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, amount=amount), headers=shop.auth(customer, key="big-amount")
        )

        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "amount"]
        assert simulator.transactions(invoice_number=order_id) == []


class TestAsciiDigits:
    @pytest.mark.parametrize(
        ("number", "cvv"),
        [
            ("٤١١١١١١١١١١١١١١١", "123"),  # Arabic-Indic digits of 4111 1111 1111 1111
            ("4111111111111111", "١٢٣"),
            ("\uff14" + "\uff11" * 15, "123"),  # full-width 4111…
        ],
    )
    async def test_card_digits_of_another_script_are_refused_and_never_sent(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, number: str, cvv: str
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id, number=number, cvv=cvv), headers=shop.auth(customer)
        )

        assert response.status_code == 422
        assert response.json()["code"] == "invalid_card"
        assert simulator.transactions(invoice_number=order_id) == []
