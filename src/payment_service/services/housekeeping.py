"""Housekeeping the worker runs beside its loops: expired idempotency keys and old published events go.

An expired key is already treated as absent by the pay flow, and a published outbox row is read by no
relay, so deleting either changes no answer; it only keeps the tables (and their indexes) the size of
one retention period. Published rows are deleted in batches, so no statement holds many row locks or
writes much at once.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from sqlalchemy.exc import SQLAlchemyError

from payment_service.store import idempotency, outbox
from payment_service.store.database import Database

log = structlog.get_logger(__name__)

PUBLISHED_BATCH: Final = 5000


@dataclass(frozen=True, slots=True)
class Swept:
    expired_keys: int
    published_events: int


class Housekeeper:
    def __init__(
        self,
        database: Database,
        *,
        interval_s: float,
        outbox_retention_s: float,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._database = database
        self._interval_s = interval_s
        self._outbox_retention = timedelta(seconds=outbox_retention_s)
        self._now = clock or (lambda: datetime.now(UTC))

    async def sweep_once(self) -> Swept:
        """Delete every key whose expiry has passed and every event published before the retention."""
        now = self._now()
        async with self._database.autocommit() as conn:
            keys = await idempotency.delete_expired_keys(conn, now=now)
        if keys:
            log.info("idempotency_keys.expired_deleted", count=keys)
        events = 0
        while True:
            async with self._database.autocommit() as conn:
                deleted = await outbox.delete_published(
                    conn, before=now - self._outbox_retention, limit=PUBLISHED_BATCH
                )
            events += deleted
            if deleted < PUBLISHED_BATCH:
                break
        if events:
            log.info("outbox.published_deleted", count=events)
        return Swept(keys, events)

    async def run(self) -> None:
        """Sweep every `interval_s` until cancelled; a store error is logged and tried again next time."""
        while True:
            try:
                await self.sweep_once()
            except SQLAlchemyError as exc:
                log.warning("housekeeping.sweep_failed", error=str(exc))
            await asyncio.sleep(self._interval_s)
