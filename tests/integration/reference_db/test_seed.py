from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reference_db_service.cli import app
from tests.support.db_service import DbServiceHandle


def total(order: dict[str, Any]) -> Decimal:
    lines = sum((Decimal(item["unit_price"]) * item["quantity"] for item in order["items"]), Decimal(0))
    return lines + Decimal(order["shipping_amount"] or 0) + Decimal(order["tax_amount"] or 0)


class TestSeed:
    def test_seed_creates_the_documented_demo_data(self, db_service: DbServiceHandle, client: httpx.Client) -> None:
        report = db_service.seed()
        assert all(record.created for record in report)
        customer = client.get("/customers/42").json()
        assert customer["address"]["line1"]
        assert client.get("/customers/43").status_code == 200
        prices = {p["id"]: p["price"] for p in client.get("/products", params={"ids": "1,2,3,4"}).json()}
        assert "19.99" in prices.values()
        assert len(prices) == 4
        order = db_service.get_order("1001")
        assert order is not None
        assert (order["customer_id"], order["status"], order["payment_status"]) == ("42", "pending", "unpaid")
        assert total(order) == Decimal("59.97")
        assert order["items"] == [{"product_id": "1", "quantity": 3, "unit_price": "19.99"}]
        customers_by_order = {n: db_service.get_order(str(n))["customer_id"] for n in range(1001, 1012)}  # type: ignore[index]
        assert set(customers_by_order.values()) == {"42", "43"}
        assert any(
            db_service.get_order(str(n))["shipping_amount"] and db_service.get_order(str(n))["tax_amount"]  # type: ignore[index]
            for n in range(1002, 1011)
        )

    def test_seeding_twice_duplicates_nothing_and_keeps_changes(
        self, db_service: DbServiceHandle, client: httpx.Client
    ) -> None:
        db_service.seed()
        client.patch("/orders/1001", json={"payment_status": "approved", "payment_id": "pay_A"})
        again = db_service.seed()
        assert not any(record.created for record in again)
        assert db_service.get_order("1001")["status"] == "paid"  # type: ignore[index]
        fresh = db_service.create_order("42", [("1", 1)])
        assert fresh["id"] == "1012"


class TestSeedCommand:
    def test_the_seed_command_prints_a_table_and_is_idempotent(self, tmp_path: Path) -> None:
        env = {"REFERENCE_DB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/nested/dir/db.sqlite3"}
        runner = CliRunner()
        first = runner.invoke(app, ["seed"], env=env)
        assert first.exit_code == 0, first.output
        assert "1001" in first.output
        assert "59.97" in first.output
        assert "created" in first.output
        second = runner.invoke(app, ["seed"], env=env)
        assert second.exit_code == 0, second.output
        assert "created" not in second.output
        assert second.output.count("existed") == first.output.count("created")

    def test_init_db_creates_the_database_file(self, tmp_path: Path) -> None:
        database = tmp_path / "var" / "db.sqlite3"
        result = CliRunner().invoke(
            app, ["init-db"], env={"REFERENCE_DB_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
        )
        assert result.exit_code == 0, result.output
        assert database.exists()


class TestStopAndStart:
    def test_a_stopped_service_refuses_connections_and_comes_back_with_its_data(
        self, db_service: DbServiceHandle
    ) -> None:
        customer = db_service.create_customer()
        db_service.stop()
        assert not db_service.is_running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{db_service.base_url}/healthz")
        db_service.start()
        assert httpx.get(f"{db_service.base_url}/healthz").status_code == 200
        got = httpx.get(f"{db_service.base_url}/customers/{customer['id']}")
        assert got.json() == customer

    async def test_seed_can_be_called_from_an_async_test(self, db_service: DbServiceHandle) -> None:
        report = db_service.seed()
        assert {record.record_id for record in report if record.kind == "customer"} == {"42", "43"}
