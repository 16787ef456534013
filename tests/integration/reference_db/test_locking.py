import sqlite3
from pathlib import Path

import httpx

from reference_db_service.api.app import create_app
from reference_db_service.settings import ReferenceDbSettings
from tests.support.servers import serve_app


class TestWriteLockHeldByAnotherProcess:
    def test_a_write_waiting_too_long_is_a_503_with_retry_after_and_then_succeeds(self, tmp_path: Path) -> None:
        database = tmp_path / "db.sqlite3"
        settings = ReferenceDbSettings(database_url=f"sqlite+aiosqlite:///{database}", sqlite_busy_timeout_ms=50)
        body = {"name": "Mug", "price": "19.99"}
        with serve_app(create_app(settings)) as base_url, httpx.Client(base_url=base_url) as client:
            assert client.post("/products", json=body).status_code == 201  # tables exist now
            other = sqlite3.connect(database, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
                busy = client.post("/products", json=body)
                assert (busy.status_code, busy.json()["code"]) == (503, "database_busy")
                assert busy.headers["retry-after"] == "1"
                # Reads are not blocked by a writer (WAL).
                assert client.get("/products", params={"ids": "1"}).status_code == 200
            finally:
                other.execute("ROLLBACK")
                other.close()
            assert client.post("/products", json=body).status_code == 201
