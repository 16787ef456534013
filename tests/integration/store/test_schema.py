"""The store's migrations on a real database (SQLite; PostgreSQL under `make test-postgres`)."""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.settings import StoreSettings
from payment_service.store.database import create_engine
from payment_service.store.schema import BASELINE_REVISION, migration_config, schema_metadata, upgrade_schema
from tests.support.databases import database_url, execute_sql, query_rows

HEAD = "0005"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return database_url(tmp_path / "store.sqlite3")


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(StoreSettings(database_url=url))
    yield engine
    await engine.dispose()


def _differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), schema_metadata()))


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(migration_config(connection), revision)

    return run


class TestMigrations:
    async def test_migrated_schema_matches_the_tables_the_code_uses(self, engine: AsyncEngine) -> None:
        await upgrade_schema(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []

    async def test_upgrade_records_the_newest_revision_and_a_second_run_changes_nothing(
        self, engine: AsyncEngine, url: str
    ) -> None:
        await upgrade_schema(engine)
        await upgrade_schema(engine)
        assert query_rows(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]

    async def test_a_database_created_before_migrations_is_stamped_and_upgraded_keeping_its_rows(
        self, engine: AsyncEngine, url: str
    ) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to(BASELINE_REVISION))
        # What create-on-start left: the baseline tables, with data, and no alembic_version.
        execute_sql(
            url,
            "DROP TABLE alembic_version",
            "INSERT INTO payments (payment_id, order_id, customer_id, status, amount, currency, invoice_number,"
            " ref_id, version, created_at, updated_at) VALUES ('pay_OLD', '7', '42', 'approved', '10.00', 'USD',"
            " '7', 'OLD', 2, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        )

        await upgrade_schema(engine)

        assert query_rows(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
        assert query_rows(url, "SELECT payment_id, status FROM payments") == [("pay_OLD", "approved")]
        assert query_rows(url, "SELECT count(*) FROM refunds") == [(0,)]
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []

    async def test_a_store_created_on_start_with_the_traceparent_column_is_upgraded_too(
        self, engine: AsyncEngine, url: str
    ) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to(BASELINE_REVISION))
        # What create-on-start left just before migrations: the baseline plus the outbox's traceparent.
        execute_sql(url, "DROP TABLE alembic_version", "ALTER TABLE outbox ADD COLUMN traceparent VARCHAR(55)")

        await upgrade_schema(engine)

        assert query_rows(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []

    async def test_api_and_worker_starting_at_once_both_end_on_the_newest_schema(self, url: str) -> None:
        engines = [create_engine(StoreSettings(database_url=url)) for _ in range(3)]
        try:
            await asyncio.gather(*(upgrade_schema(engine) for engine in engines))
        finally:
            for engine in engines:
                await engine.dispose()
        assert query_rows(url, "SELECT version_num FROM alembic_version") == [(HEAD,)]
