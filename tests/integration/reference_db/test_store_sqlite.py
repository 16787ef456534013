"""The SQLite store's own machinery against real SQLite files: statements run on the driver, reads
on the event loop, and the loop's writer handing writes to its thread while another process holds
the write lock."""

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, bindparam, create_engine, insert, select

from reference_db_service.settings import ReferenceDbSettings
from reference_db_service.store.database import Database, SqliteDatabase
from reference_db_service.store.statements import Statement
from reference_db_service.store.tables import customers, metadata, orders, payments
from tests.integration.reference_db.factories import payment_body
from tests.support.db_service import DbServiceHandle

_CREATED_AT = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
_GATEWAY = {"name": "authorize.net", "account_number": "XXXX1111"}


def _seed(conn: Connection) -> None:
    conn.execute(
        insert(customers).values(
            id=1,
            email="a@example.com",
            first_name="A",
            last_name="B",
            line1="1 St",
            city="C",
            state="S",
            zip="1",
            country="US",
        )
    )
    conn.execute(
        insert(orders).values(
            id=7,
            customer_id=1,
            status="pending",
            payment_status="unpaid",
            currency="USD",
            created_at=_CREATED_AT,
            updated_at=_CREATED_AT,
        )
    )


class TestStatement:
    def test_rows_match_what_sqlalchemy_itself_returns(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
        metadata.create_all(engine)
        insert_payment = Statement(
            insert(payments),
            column_keys=(
                "id",
                "order_id",
                "customer_id",
                "status",
                "amount_minor",
                "currency",
                "gateway",
                "version",
                "created_at",
                "updated_at",
                "recorded_at",
            ),
        )
        select_payment = select(payments).where(payments.c.id == bindparam("b_id"))
        with engine.begin() as conn:
            _seed(conn)
            insert_payment.rows(
                conn,
                {
                    "id": "pay_1",
                    "order_id": 7,
                    "customer_id": 1,
                    "status": "approved",
                    "amount_minor": 5997,
                    "currency": "USD",
                    "gateway": _GATEWAY,
                    "version": 2,
                    "created_at": _CREATED_AT,
                    "updated_at": _CREATED_AT,
                    "recorded_at": _CREATED_AT,
                },
            )
            expected = conn.execute(select_payment, {"b_id": "pay_1"}).one()
            row = Statement(select_payment).first(conn, {"b_id": "pay_1"})
        assert row is not None
        assert tuple(row) == tuple(expected)
        assert (row.gateway, row.created_at, row.created_at.tzinfo) == (_GATEWAY, _CREATED_AT, UTC)

    def test_a_statement_without_a_match_has_no_rows(self, tmp_path: Path) -> None:
        engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
        metadata.create_all(engine)
        statement = Statement(select(orders.c.id).where(orders.c.id == bindparam("b_id")))
        with engine.begin() as conn:
            assert statement.first(conn, {"b_id": 1}) is None


class TestReadsOnTheEventLoop:
    async def test_every_read_after_an_acknowledged_write_sees_it(self, db_service: DbServiceHandle) -> None:
        customer = db_service.create_customer()
        mug = db_service.create_product("Mug", "19.99")
        created = [db_service.create_order(customer["id"], [(mug["id"], 1)]) for _ in range(20)]

        async def pay_then_read(http: httpx.AsyncClient, order: dict[str, Any], n: int) -> None:
            body = {"payment_status": "approved", "payment_id": f"pay_{n}"}
            assert (await http.patch(f"/orders/{order['id']}", json=body)).status_code == 200
            read = (await http.get(f"/orders/{order['id']}")).json()
            assert (read["status"], read["payment_id"]) == ("paid", f"pay_{n}")

        async with httpx.AsyncClient(base_url=db_service.base_url, headers=db_service.headers) as http:
            async with asyncio.timeout(10):
                await asyncio.gather(*(pay_then_read(http, order, n) for n, order in enumerate(created)))

    async def test_a_put_is_readable_back_at_once(self, db_service: DbServiceHandle) -> None:
        customer = db_service.create_customer()
        order = db_service.create_order(customer["id"], [(db_service.create_product("Mug", "19.99")["id"], 3)])
        async with httpx.AsyncClient(base_url=db_service.base_url, headers=db_service.headers) as http:
            put = await http.put("/payments/pay_9", json=payment_body(order["id"], customer["id"]))
            assert put.status_code == 201
            assert (await http.get("/payments/pay_9")).json() == put.json()
            assert (await http.get(f"/orders/{order['id']}")).json()["status"] == "paid"


def _insert_customer(conn: Connection, email: str) -> int:
    row = conn.execute(
        insert(customers)
        .values(email=email, first_name="A", last_name="B", line1="1 St", city="C", state="S", zip="1", country="US")
        .returning(customers.c.id)
    ).one()
    return int(row.id)


def _emails(conn: Connection) -> list[str]:
    return list(conn.execute(select(customers.c.email).order_by(customers.c.id)).scalars())


def _waiting(db: SqliteDatabase) -> bool:
    return db.is_waiting_for_write_lock


class TestWritesWhileAnotherProcessHoldsTheLock:
    async def test_writes_wait_on_the_writer_thread_and_commit_in_order_once_the_lock_is_free(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "db.sqlite3"
        db = Database.open(ReferenceDbSettings(database_url=f"sqlite:///{path}", sqlite_busy_timeout_ms=10_000))
        assert isinstance(db, SqliteDatabase)
        try:
            await db.create_schema()
            other = sqlite3.connect(path, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                first = asyncio.create_task(db.write(_insert_customer, "first@example.com"))
                await asyncio.sleep(0)  # the task queues its job
                await asyncio.sleep(0)  # the loop's writer finds the lock taken and hands over
                assert _waiting(db)
                second = asyncio.create_task(db.write(_insert_customer, "second@example.com"))
                await asyncio.sleep(0)
                assert not first.done()
                assert not second.done()
            finally:
                other.execute("ROLLBACK")
                other.close()
            async with asyncio.timeout(10):
                assert (await first, await second) == (1, 2)
            assert await db.read(_emails) == ["first@example.com", "second@example.com"]
            assert not _waiting(db)
            # The loop writes again once the thread has caught up.
            assert await db.write(_insert_customer, "third@example.com") == 3
        finally:
            await db.close()


def _insert_customer_then_fail(conn: Connection, email: str) -> int:
    _insert_customer(conn, email)
    msg = "the job failed after writing"
    raise RuntimeError(msg)


class TestBatchedWrites:
    async def test_writes_queued_together_commit_or_fail_alone(self, tmp_path: Path) -> None:
        db = Database.open(ReferenceDbSettings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}"))
        try:
            await db.create_schema()
            # Queued in one turn of the loop, the three run as one batch: one transaction, a savepoint each.
            outcomes = await asyncio.gather(
                db.write(_insert_customer, "first@example.com"),
                db.write(_insert_customer_then_fail, "failed@example.com"),
                db.write(_insert_customer, "third@example.com"),
                return_exceptions=True,
            )
            assert outcomes[0] == 1
            assert isinstance(outcomes[1], RuntimeError)
            assert outcomes[2] in {2, 3}  # SQLite may or may not reuse the rolled-back rowid
            assert await db.read(_emails) == ["first@example.com", "third@example.com"]
        finally:
            await db.close()
