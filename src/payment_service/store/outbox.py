"""The outbox: events written in the same transaction as the state change they describe.

The relay reads unpublished rows in `seq` order and marks them published only after the broker
acknowledged them; a crash in between publishes them again, so consumers deduplicate by event id.

Several relays (the API's and the worker's, or several instances on PostgreSQL) share the table
through a lease: `claim_unpublished` takes the oldest rows nobody holds (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite write transactions are serialised anyway) and stamps `lease_until` in one
statement, committed at once, so no transaction stays open while the relay talks to Kafka. A relay that dies holding a lease only
delays its rows until the lease runs out.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    any_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_service.domain.events import EventStream, OutboundEvent
from payment_service.store.database import UtcDateTime, metadata
from payment_service.store.statements import Statement

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("stream", String(32), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("key", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", UtcDateTime, nullable=True),
    # The trace the event was written in (W3C traceparent), continued by its Kafka record; None untraced.
    Column("traceparent", String(55), nullable=True),
)
Index(
    "ix_outbox_unpublished",
    outbox.c.seq,
    sqlite_where=outbox.c.published_at.is_(None),
    postgresql_where=outbox.c.published_at.is_(None),
)


EVENT_COLUMNS = ("event_id", "stream", "event_type", "subject", "key", "data", "occurred_at", "attempts", "traceparent")
_INSERT_EVENT = Statement(insert(outbox).inline(), column_keys=EVENT_COLUMNS)  # inline: no `RETURNING seq`


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    event: OutboundEvent


async def add_events(conn: AsyncConnection, events: Sequence[OutboundEvent]) -> None:
    """Append events; call inside the transaction that makes the change they describe."""
    if not events:
        return
    await _INSERT_EVENT.execute_many(conn, [event_values(e) for e in events])


def event_values(event: OutboundEvent) -> dict[str, Any]:
    """The values of a new outbox row of `event`, by column (`EVENT_COLUMNS`)."""
    return {
        "event_id": event.event_id,
        "stream": event.stream.value,
        "event_type": event.event_type,
        "subject": event.subject,
        "key": event.key,
        "data": event.data,
        "occurred_at": event.occurred_at,
        "attempts": 0,
        "traceparent": event.traceparent,
    }


async def fetch_unpublished(conn: AsyncConnection, *, limit: int, skip_locked: bool = False) -> list[OutboxRow]:
    """Oldest unpublished rows first. With `skip_locked` (PostgreSQL) rows claimed by another relay are skipped."""
    query = select(outbox).where(outbox.c.published_at.is_(None)).order_by(outbox.c.seq).limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return [_outbox_row(row) for row in (await conn.execute(query)).mappings().all()]


def _outbox_row(row: Mapping[Any, Any]) -> OutboxRow:
    return OutboxRow(
        seq=row["seq"],
        event=OutboundEvent(
            event_id=row["event_id"],
            stream=EventStream(row["stream"]),
            event_type=row["event_type"],
            subject=row["subject"],
            key=row["key"],
            data=row["data"],
            occurred_at=row["occurred_at"],
            traceparent=row["traceparent"],
        ),
    )


# One statement: the lease is taken where the rows are chosen, so on PostgreSQL it needs no transaction
# around it (an idle pass is one round trip, no BEGIN or COMMIT). RETURNING gives no order: sorted after.
_CLAIMABLE = (
    select(outbox.c.seq)
    .where(
        outbox.c.published_at.is_(None),
        or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < bindparam("b_now", type_=UtcDateTime)),
    )
    .order_by(outbox.c.seq)
    .limit(bindparam("b_limit", type_=Integer))
)


def _lease(claimable: Select[Any]) -> Statement:
    return Statement(
        update(outbox)
        .where(outbox.c.seq.in_(claimable))
        .values(lease_until=bindparam("b_lease_until", type_=UtcDateTime))
        .returning(*outbox.columns)
    )


_CLAIM = _lease(_CLAIMABLE)
_CLAIM_SKIP_LOCKED = _lease(_CLAIMABLE.with_for_update(skip_locked=True))
_RELEASE = Statement(
    update(outbox)
    .where(outbox.c.seq == bindparam("b_seq"), outbox.c.published_at.is_(None))
    .values(lease_until=None, attempts=outbox.c.attempts + 1)
)
_MARK_PUBLISHED = Statement(
    update(outbox).where(outbox.c.seq == bindparam("b_seq")).values(attempts=outbox.c.attempts + 1, lease_until=None),
    column_keys=("published_at",),
)
# PostgreSQL: a relay's whole batch in one statement (an `executemany` is one Execute per row on the server).
_MARK_ALL_PUBLISHED = Statement(
    update(outbox)
    .where(outbox.c.seq == any_(bindparam("b_seqs", type_=postgresql.ARRAY(BigInteger))))
    .values(attempts=outbox.c.attempts + 1, lease_until=None),
    column_keys=("published_at",),
)
_COLUMNS = tuple(column.key for column in outbox.columns)


async def claim_unpublished(
    conn: AsyncConnection, *, limit: int, now: datetime, lease_until: datetime, skip_locked: bool = False
) -> list[OutboxRow]:
    """Lease the oldest unpublished rows that no other relay holds, in `seq` order.

    One statement: run it alone (`Database.autocommit`) or in a short transaction, committed before
    publishing; `mark_published` or `release_claims` ends the lease.
    """
    query = _CLAIM_SKIP_LOCKED if skip_locked else _CLAIM
    found = await query.fetch_all(conn, {"b_now": now, "b_limit": limit, "b_lease_until": lease_until})
    rows = [_outbox_row(dict(zip(_COLUMNS, row, strict=True))) for row in found]
    return sorted(rows, key=lambda row: row.seq)


async def release_claims(conn: AsyncConnection, seqs: Sequence[int]) -> None:
    """Give leased rows back after a failed publish, so any relay may retry them at once."""
    if seqs:
        await _RELEASE.execute_many(conn, [{"b_seq": seq} for seq in seqs])


async def mark_published(conn: AsyncConnection, seqs: Sequence[int], *, published_at: datetime) -> None:
    if not seqs:
        return
    if conn.dialect.name == "postgresql":
        await _MARK_ALL_PUBLISHED.execute(conn, {"b_seqs": list(seqs), "published_at": published_at})
    else:
        await _MARK_PUBLISHED.execute_many(conn, [{"b_seq": seq, "published_at": published_at} for seq in seqs])


# Oldest first (the primary key's order, roughly the order of publishing), a batch at a time.
_DELETE_PUBLISHED = Statement(
    delete(outbox).where(
        outbox.c.seq.in_(
            select(outbox.c.seq)
            .where(outbox.c.published_at < bindparam("b_before", type_=UtcDateTime))
            .order_by(outbox.c.seq)
            .limit(bindparam("b_limit", type_=Integer))
        )
    )
)


async def delete_published(conn: AsyncConnection, *, before: datetime, limit: int) -> int:
    """Delete at most `limit` rows published before `before`, oldest first; how many were deleted."""
    return await _DELETE_PUBLISHED.execute(conn, {"b_before": before, "b_limit": limit})


async def fetch_backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many rows wait, and when the oldest of them occurred (for lag metrics)."""
    row = (
        await conn.execute(select(func.count(), func.min(outbox.c.occurred_at)).where(outbox.c.published_at.is_(None)))
    ).one()
    count, oldest = row
    return int(count), UtcDateTime().process_result_value(oldest, conn.dialect) if oldest is not None else None
