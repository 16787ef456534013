from collections.abc import Iterator

import httpx
import pytest

from tests.support.db_service import DbServiceHandle, run_db_service

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbServiceHandle]:
    with run_db_service(tmp_path_factory.mktemp("guarded"), token=TOKEN) as handle:
        yield handle


class TestBearerToken:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/orders/1001"),
            ("PATCH", "/orders/1001"),
            ("GET", "/customers/42"),
            ("GET", "/products?ids=1"),
            ("PUT", "/payments/pay_A"),
            ("GET", "/payments/pay_A"),
            ("GET", "/payments?order_id=1001"),
            ("POST", "/customers"),
            ("POST", "/products"),
            ("POST", "/orders"),
            ("POST", "/orders/1001/cancel"),
        ],
    )
    @pytest.mark.parametrize(
        "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, "Bearer", f"Bearer {TOKEN}x"]
    )
    def test_every_endpoint_refuses_a_missing_or_wrong_token(
        self, guarded: DbServiceHandle, method: str, path: str, authorization: str | None
    ) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = httpx.request(method, guarded.base_url + path, headers=headers, json={})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthorized"

    def test_the_right_token_is_accepted(self, guarded: DbServiceHandle) -> None:
        guarded.seed()
        order = guarded.get_order("1001")  # the helpers send the handle's token
        assert order is not None
        assert order["customer_id"] == "42"

    def test_healthz_needs_no_token(self, guarded: DbServiceHandle) -> None:
        assert httpx.get(f"{guarded.base_url}/healthz").status_code == 200


class TestWithoutToken:
    def test_no_token_is_needed_when_none_is_configured(
        self, db_service: DbServiceHandle, client: httpx.Client
    ) -> None:
        assert "authorization" not in client.headers
        assert client.get("/customers/1").status_code == 404
