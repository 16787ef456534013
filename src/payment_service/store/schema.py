"""The store's schema: Alembic migrations (`store/migrations/`) applied on start, on SQLite and PostgreSQL.

The API and the worker start at once and both upgrade: on PostgreSQL the upgrade runs under a
transaction-scoped advisory lock, on SQLite inside a write transaction (`BEGIN IMMEDIATE`), so the
second waits and then finds nothing left to do. A database created before migrations existed (its
tables present, no `alembic_version`) is stamped at the baseline revision, then upgraded.
"""

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service.store.database import is_sqlite, metadata

MIGRATIONS_LOCATION = "payment_service.store:migrations"
BASELINE_REVISION = "0001"
# Any fixed number: the key of the advisory lock that serialises upgrades on PostgreSQL.
_SCHEMA_LOCK_KEY = 0x7061_796D_656E  # "paymen"


def schema_metadata() -> MetaData:
    """The metadata with every table of the store registered on it (what the migrations must build)."""
    # Imported for their side effect: each module defines its tables on `metadata`.
    from payment_service.store import outbox, refunds, resolutions, tables, webhooks  # noqa: F401

    return metadata


def migration_config(connection: Connection) -> Config:
    """An Alembic configuration that runs on `connection` (see `migrations/env.py`)."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_LOCATION)
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    config = migration_config(connection)
    names = set(inspect(connection).get_table_names())
    if "payments" in names and "alembic_version" not in names:
        command.stamp(config, BASELINE_REVISION)
    command.upgrade(config, "head")


async def upgrade_schema(engine: AsyncEngine) -> None:
    """Bring the store's schema to the newest revision; safe when several processes start at once."""
    async with engine.begin() as conn:
        if not is_sqlite(engine):
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_KEY})")
        await conn.run_sync(_upgrade)
