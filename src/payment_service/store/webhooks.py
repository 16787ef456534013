"""Gateway notifications as received: stored before they are answered, processed from here.

`notification_id` is the primary key, so a redelivered notification is stored once. Processors take
rows under a lease, as relays take outbox rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite write
transactions are serialised anyway), and commit before talking to the gateway: a processor that dies
holding a lease only delays its rows until the lease runs out. A row stays unprocessed until its
outcome is recorded, so a crash loses nothing.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, LargeBinary, String, Table, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.domain.notifications import GatewayNotification, NotificationOutcome
from payment_service.store.database import Database, UtcDateTime, metadata

webhook_notifications = Table(
    "webhook_notifications",
    metadata,
    Column("notification_id", String(64), primary_key=True),
    Column("event_type", String(128), nullable=False),
    Column("transaction_id", String(32), nullable=True),
    Column("body", LargeBinary, nullable=False),  # as signed, for audit; Authorize.Net sends no card data
    Column("received_at", UtcDateTime, nullable=False),
    Column("processed_at", UtcDateTime, nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("last_error", String(128), nullable=True),
)
Index(
    "ix_webhook_notifications_unprocessed",
    webhook_notifications.c.received_at,
    sqlite_where=webhook_notifications.c.processed_at.is_(None),
    postgresql_where=webhook_notifications.c.processed_at.is_(None),
)


@dataclass(frozen=True, slots=True)
class StoredNotification:
    notification: GatewayNotification
    received_at: datetime
    attempts: int
    processed_at: datetime | None = None
    outcome: str | None = None


def _stored(row: Mapping[Any, Any]) -> StoredNotification:
    return StoredNotification(
        notification=GatewayNotification(row["notification_id"], row["event_type"], row["transaction_id"]),
        received_at=row["received_at"],
        attempts=row["attempts"],
        processed_at=row["processed_at"],
        outcome=row["outcome"],
    )


async def add_notification(
    database: Database, notification: GatewayNotification, *, body: bytes, received_at: datetime
) -> bool:
    """Store a notification in a transaction of its own; False when its id was stored already."""
    try:
        async with database.transaction() as conn:
            await conn.execute(
                webhook_notifications.insert().values(
                    notification_id=notification.notification_id,
                    event_type=notification.event_type,
                    transaction_id=notification.transaction_id,
                    body=body,
                    received_at=received_at,
                    attempts=0,
                )
            )
    except IntegrityError:
        return False
    return True


async def claim_unprocessed(
    conn: AsyncConnection, *, limit: int, now: datetime, lease_until: datetime, skip_locked: bool = False
) -> list[StoredNotification]:
    """Lease the oldest unprocessed notifications nobody holds; commit before processing them."""
    table = webhook_notifications
    query = (
        select(table)
        .where(table.c.processed_at.is_(None), or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        .order_by(table.c.received_at)
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    rows = [_stored(row) for row in (await conn.execute(query)).mappings()]
    ids = [row.notification.notification_id for row in rows]
    if ids:
        await conn.execute(update(table).where(table.c.notification_id.in_(ids)).values(lease_until=lease_until))
    return rows


async def mark_processed(
    conn: AsyncConnection, notification_id: str, *, outcome: NotificationOutcome, processed_at: datetime
) -> None:
    table = webhook_notifications
    await conn.execute(
        update(table)
        .where(table.c.notification_id == notification_id)
        .values(processed_at=processed_at, outcome=outcome.value, attempts=table.c.attempts + 1, lease_until=None)
    )


async def record_failure(conn: AsyncConnection, notification_id: str, *, error: str, retry_at: datetime) -> None:
    """Count a failed attempt; the row is taken again from `retry_at`."""
    table = webhook_notifications
    await conn.execute(
        update(table)
        .where(table.c.notification_id == notification_id)
        .values(attempts=table.c.attempts + 1, last_error=error[:128], lease_until=retry_at)
    )


async def fetch_notifications(conn: AsyncConnection, notification_ids: Sequence[str]) -> list[StoredNotification]:
    table = webhook_notifications
    rows = await conn.execute(select(table).where(table.c.notification_id.in_(notification_ids)))
    return [_stored(row) for row in rows.mappings()]
