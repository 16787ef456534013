"""Bearer tokens at the HTTP edge: every bad token is a 401 problem, and nothing is charged."""

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from payment_service.settings import DEV_JWT_SECRET
from tests.integration.conftest import Shop, card_body
from tests.support.simulator import SimulatorHandle


def _token(claims: dict[str, Any], *, key: str = DEV_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _none_token(customer_id: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
    claims = json.dumps({"sub": customer_id, "exp": int(time.time()) + 600}).encode()
    return f"{header.decode()}.{base64.urlsafe_b64encode(claims).rstrip(b'=').decode()}."


class TestBearerTokens:
    @pytest.mark.parametrize(
        "kind",
        ["expired", "wrong_signature", "alg_none", "wrong_audience", "no_exp", "garbage"],
    )
    async def test_bad_token_answers_401_and_charges_nothing(
        self, api_client: httpx.AsyncClient, shop: Shop, simulator: SimulatorHandle, kind: str
    ) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        now = int(time.time())
        token = {
            "expired": _token({"sub": customer, "exp": now - 3600}),
            "wrong_signature": _token(
                {"sub": customer, "exp": now + 600}, key="another-secret-of-sufficient-length-0123"
            ),
            "alg_none": _none_token(customer),
            "wrong_audience": _token({"sub": customer, "exp": now + 600, "aud": "someone-else"}),
            "no_exp": _token({"sub": customer}),
            "garbage": "not-a-jwt",
        }[kind]

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id), headers={"Authorization": f"Bearer {token}"}
        )

        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthenticated"
        assert simulator.transactions(invoice_number=order_id) == []

    async def test_valid_token_of_the_owner_is_accepted(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        token = _token({"sub": customer, "exp": int(time.time()) + 600})

        response = await api_client.post(
            "/payments/pay", json=card_body(order_id), headers={"Authorization": f"Bearer {token}"}
        )

        assert response.status_code == 201
