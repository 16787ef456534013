import httpx

from tests.support.db_service import DbServiceHandle

PROBLEM_JSON = "application/problem+json"


class TestCustomers:
    def test_a_created_customer_reads_back_with_a_string_id(
        self, db_service: DbServiceHandle, client: httpx.Client
    ) -> None:
        created = db_service.create_customer(first_name="Ada", last_name="Lovelace", email="ada@example.com")
        assert isinstance(created["id"], str)
        response = client.get(f"/customers/{created['id']}")
        assert response.status_code == 200
        assert response.json() == created
        assert created["address"] == {
            "line1": "1 Test Street",
            "line2": None,
            "city": "Springfield",
            "state": "IL",
            "zip": "62701",
            "country": "US",
        }

    def test_create_answers_201_with_location(self, client: httpx.Client) -> None:
        body = {
            "email": "a@example.com",
            "first_name": "A",
            "last_name": "B",
            "address": {"line1": "x", "city": "c", "state": "s", "zip": "1", "country": "US"},
        }
        response = client.post("/customers", json=body)
        assert response.status_code == 201
        assert response.headers["location"] == f"/customers/{response.json()['id']}"
        assert response.json()["phone"] is None

    def test_an_explicit_id_is_kept_and_cannot_be_reused(
        self, db_service: DbServiceHandle, client: httpx.Client
    ) -> None:
        assert db_service.create_customer(id="4242")["id"] == "4242"
        response = client.post(
            "/customers",
            json={
                "id": "4242",
                "email": "b@example.com",
                "first_name": "B",
                "last_name": "C",
                "address": {"line1": "x", "city": "c", "state": "s", "zip": "1", "country": "US"},
            },
        )
        assert response.status_code == 409
        assert response.json()["code"] == "already_exists"

    def test_an_unknown_customer_is_a_404_problem(self, client: httpx.Client) -> None:
        for customer_id in ("999", "abc"):
            response = client.get(f"/customers/{customer_id}")
            assert response.status_code == 404
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["code"] == "customer_not_found"

    def test_an_invalid_customer_is_a_422_problem_without_the_input(self, client: httpx.Client) -> None:
        response = client.post("/customers", json={"email": "not-an-email", "first_name": "A"})
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "validation_failed"
        assert problem["status"] == 422
        locations = {tuple(error["loc"]) for error in problem["errors"]}
        assert {("body", "email"), ("body", "last_name"), ("body", "address")} <= locations
        assert "not-an-email" not in response.text


class TestProducts:
    def test_products_are_listed_by_ids_and_missing_ids_are_absent(
        self, db_service: DbServiceHandle, client: httpx.Client
    ) -> None:
        mug = db_service.create_product("Mug", "19.99", sku="MUG-1")
        pen = db_service.create_product("Pen", "2")
        response = client.get("/products", params={"ids": f"{pen['id']},{mug['id']},9999"})
        assert response.status_code == 200
        assert response.json() == [
            {"id": mug["id"], "name": "Mug", "sku": "MUG-1", "price": "19.99"},
            {"id": pen["id"], "name": "Pen", "sku": None, "price": "2.00"},
        ]

    def test_a_bad_id_list_is_a_422_problem(self, client: httpx.Client) -> None:
        too_many = ",".join(str(n) for n in range(1, 102))
        for ids in ("1,x", "", too_many, "0"):
            response = client.get("/products", params={"ids": ids})
            assert response.status_code == 422, ids
            assert response.json()["code"] == "validation_failed"

    def test_a_missing_id_list_is_a_422_problem(self, client: httpx.Client) -> None:
        assert client.get("/products").status_code == 422

    def test_a_float_or_over_precise_price_is_rejected(self, client: httpx.Client) -> None:
        assert client.post("/products", json={"name": "Mug", "price": 19.99}).status_code == 422
        assert client.post("/products", json={"name": "Mug", "price": "19.999"}).status_code == 422
        assert client.post("/products", json={"name": "", "price": "1.00"}).status_code == 422


class TestHealth:
    def test_healthz_answers_ok(self, client: httpx.Client) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_an_unknown_route_is_a_404_problem(self, client: httpx.Client) -> None:
        response = client.get("/nope")
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["code"] == "not_found"
