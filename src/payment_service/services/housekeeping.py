"""Housekeeping the worker runs beside its loops: idempotency keys past their expiry are deleted.

An expired key is already treated as absent by the pay flow, so deleting it changes no answer; it only
keeps the table (and its index) the size of one retention period.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import SQLAlchemyError

from payment_service.store import idempotency
from payment_service.store.database import Database

log = structlog.get_logger(__name__)


class IdempotencyKeySweeper:
    def __init__(self, database: Database, *, interval_s: float, clock: Callable[[], datetime] | None = None) -> None:
        self._database = database
        self._interval_s = interval_s
        self._now = clock or (lambda: datetime.now(UTC))

    async def sweep_once(self) -> int:
        """Delete every key whose expiry has passed; return how many."""
        async with self._database.transaction() as conn:
            deleted = await idempotency.delete_expired_keys(conn, now=self._now())
        if deleted:
            log.info("idempotency_keys.expired_deleted", count=deleted)
        return deleted

    async def run(self) -> None:
        """Sweep every `interval_s` until cancelled; a store error is logged and tried again next time."""
        while True:
            try:
                await self.sweep_once()
            except SQLAlchemyError as exc:
                log.warning("idempotency_keys.sweep_failed", error=str(exc))
            await asyncio.sleep(self._interval_s)
