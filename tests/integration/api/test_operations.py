"""Operations endpoints: liveness, readiness of each dependency, metrics, OpenAPI, request ids."""

from pathlib import Path

import httpx

from payment_service.api.app import create_app
from tests.integration.conftest import Shop, app_client, build_settings, card_body
from tests.support.db_service import run_db_service
from tests.support.simulator import SimulatorHandle

READINESS_503 = ("get", "/readyz", "503")  # a JSON readiness report, not a problem


class TestOperations:
    async def test_healthz_answers_ok(self, api_client: httpx.AsyncClient) -> None:
        response = await api_client.get("/healthz")

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readyz_reports_the_store_and_the_db_service(self, api_client: httpx.AsyncClient) -> None:
        response = await api_client.get("/readyz")

        checks = response.json()["checks"]
        assert checks["store"] == "ok"
        assert checks["db_service"] == "ok"
        assert response.status_code == (200 if all(v == "ok" for v in checks.values()) else 503)

    async def test_readyz_answers_503_when_the_db_service_is_down(
        self, tmp_path: Path, simulator: SimulatorHandle
    ) -> None:
        with run_db_service(tmp_path / "down") as down:
            settings = build_settings(tmp_path, simulator, down)
            down.stop()
            async with app_client(create_app(settings)) as client:
                response = await client.get("/readyz")

        assert response.status_code == 503
        assert response.json()["checks"]["db_service"] == "db_service_unavailable"

    async def test_metrics_count_payments_by_status(self, api_client: httpx.AsyncClient, shop: Shop) -> None:
        customer = shop.customer()
        order_id = str(shop.order(customer)["id"])
        await api_client.post("/payments/pay", json=card_body(order_id), headers=shop.auth(customer))

        response = await api_client.get("/metrics")

        assert response.status_code == 200
        assert 'payment_service_payments_total{status="approved"}' in response.text
        assert "payment_service_gateway_request_seconds_bucket" in response.text

    async def test_openapi_documents_every_pay_outcome(self, api_client: httpx.AsyncClient) -> None:
        schema = (await api_client.get("/openapi.json")).json()

        responses = schema["paths"]["/payments/pay"]["post"]["responses"]
        assert {"201", "202", "401", "402", "404", "409", "413", "422", "431", "500", "502", "503"} <= set(responses)

    async def test_openapi_documents_every_error_as_problem_json(self, api_client: httpx.AsyncClient) -> None:
        schema = (await api_client.get("/openapi.json")).json()

        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                responses = operation["responses"]
                assert {"413", "431", "500"} <= set(responses), (method, path)
                if operation.get("security"):
                    assert "401" in responses, (method, path)
                errors = {s: r for s, r in responses.items() if int(s) >= 400 and (method, path, s) != READINESS_503}
                for status, response in errors.items():
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
        assert "HTTPValidationError" not in schema["components"]["schemas"]

    async def test_openapi_says_the_two_body_shapes_exclude_each_other(self, api_client: httpx.AsyncClient) -> None:
        schemas = (await api_client.get("/openapi.json")).json()["components"]["schemas"]

        assert len(schemas["PayRequest"]["oneOf"]) == 2
        assert len(schemas["PaymentMethodIn"]["oneOf"]) == 2

    async def test_request_id_is_echoed_or_made_up(self, api_client: httpx.AsyncClient) -> None:
        echoed = await api_client.get("/healthz", headers={"X-Request-ID": "req-123"})
        made_up = await api_client.get("/healthz")

        assert echoed.headers["x-request-id"] == "req-123"
        assert len(made_up.headers["x-request-id"]) == 24

    async def test_unknown_route_is_a_problem_document(self, api_client: httpx.AsyncClient) -> None:
        response = await api_client.get("/nowhere")

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
