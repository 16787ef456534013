"""`GET /payments/{id}` and `GET /payments?order_id=`: for the owner or an admin, 404 for anyone else."""

import httpx

from payment_service.api.schemas import PaymentResponse
from tests.integration.conftest import Shop, card_body


async def _paid_order(client: httpx.AsyncClient, shop: Shop) -> tuple[str, str, dict[str, object]]:
    customer = shop.customer()
    order_id = str(shop.order(customer)["id"])
    response = await client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))
    assert response.status_code == 201
    return customer, order_id, response.json()


class TestGetPayment:
    async def test_owner_reads_the_payment_as_it_was_answered(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer, _, paid = await _paid_order(api_client, shop)

        response = await api_client.get(f"/payments/{paid['id']}", headers=shop.auth(customer))

        assert response.status_code == 200
        assert response.json() == paid
        PaymentResponse.model_validate_json(response.content)

    async def test_another_customer_gets_404(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        _, _, paid = await _paid_order(api_client, shop)

        response = await api_client.get(f"/payments/{paid['id']}", headers=shop.auth(shop.customer()))

        assert response.status_code == 404
        assert response.json()["code"] == "payment_not_found"

    async def test_admin_reads_any_payment(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        _, _, paid = await _paid_order(api_client, shop)

        response = await api_client.get(f"/payments/{paid['id']}", headers=shop.auth("ops", roles=("admin",)))

        assert response.status_code == 200

    async def test_unknown_payment_gets_404(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        response = await api_client.get("/payments/pay_NOPE", headers=shop.auth(shop.customer()))

        assert response.status_code == 404


class TestListPayments:
    async def test_owner_lists_the_attempts_of_the_order(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer, order_id, paid = await _paid_order(api_client, shop)

        response = await api_client.get("/payments", params={"order_id": order_id}, headers=shop.auth(customer))

        assert response.status_code == 200
        assert response.json() == [paid]

    async def test_another_customer_gets_404(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        _, order_id, _ = await _paid_order(api_client, shop)

        response = await api_client.get("/payments", params={"order_id": order_id}, headers=shop.auth(shop.customer()))

        assert response.status_code == 404

    async def test_admin_lists_any_order(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        _, order_id, paid = await _paid_order(api_client, shop)

        response = await api_client.get(
            "/payments", params={"order_id": order_id}, headers=shop.auth("ops", roles=("admin",))
        )

        assert [p["id"] for p in response.json()] == [paid["id"]]
