"""OutboxRelay: publishes outbox rows to Kafka in `seq` order, marking each sent only after the ack.

It lives in `services/` rather than `worker/` because both entrypoints run it and `api` may not
import `worker`; like the reconciler, it is a use case (it owns the claim and mark transactions)
that an entrypoint runs as a loop.

Where relays run, so that events leave right after their commit:
- The API process runs one (`resources.running_outbox_relay`), woken in-process by the pay flow's
  after-commit hook (`Resources.outbox_written`): an approved payment's events are normally on the
  broker a few milliseconds after the response.
- The worker runs one too, sweeping every `sweep_interval_s`: it publishes what the API left behind
  (a crash between commit and publish, a broker outage, an API without a relay).
- Two relays never publish the same row at the same instant: a pass *leases* its rows in one
  statement (`store.outbox.claim_unpublished`; `FOR UPDATE SKIP LOCKED` on PostgreSQL, SQLite's
  write lock otherwise) committed before talking to Kafka; on PostgreSQL the lease and the mark are
  one round trip each with no BEGIN or COMMIT (an idle sweep costs one statement). Several relays
  and several instances share one table this way. A relay killed between publish and mark re-publishes after the lease
  runs out: delivery is at least once and consumers deduplicate (`ce_id`, or payment id + version).
  Two relays can interleave the rows of one order only when one of them dies holding a lease; the
  version guard keeps the payment consumer right even then.

While Kafka is down a pass fails fast, gives its rows back, and the loop backs off exponentially with
jitter up to `max_backoff_s`; when the broker returns the next pass drains the backlog in batches.
"""

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from payment_service.domain.errors import MessagingUnavailable
from payment_service.messaging.publisher import EventPublisher
from payment_service.services import metrics
from payment_service.settings import RelaySettings
from payment_service.store.database import Database, is_sqlite
from payment_service.store.outbox import claim_unpublished, fetch_backlog, mark_published, release_claims

log = structlog.get_logger(__name__)

INITIAL_BACKOFF_S = 0.2


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        publisher: EventPublisher,
        settings: RelaySettings,
        *,
        wakeup: asyncio.Event | None = None,
        lease_s: float = 60.0,
        name: str = "relay",
    ) -> None:
        """Build a relay; `wakeup` is the event the pay flow sets after each commit with outbox rows."""
        self._database = database
        self._publisher = publisher
        self._settings = settings
        self._lease = timedelta(seconds=lease_s)
        self._name = name
        self._wakeup = wakeup or asyncio.Event()
        self._skip_locked = not is_sqlite(database.engine)
        self._failures = 0
        self._next_backlog_sample = 0.0

    def wake(self) -> None:
        """Ask for a pass now (after a commit that added outbox rows). Cheap; call from the event loop."""
        self._wakeup.set()

    async def publish_pending(self) -> int:
        """Publish every row unleased at the start, oldest first, in batches; return how many.

        Raises:
            MessagingUnavailable: the broker did not acknowledge a batch; its rows are given back
                unpublished (rows of earlier batches stay published).
        """
        published = 0
        batch_size = self._settings.batch_size
        while True:
            now = datetime.now(UTC)
            async with self._database.autocommit() as conn:
                rows = await claim_unpublished(
                    conn,
                    limit=batch_size,
                    now=now,
                    lease_until=now + self._lease,
                    skip_locked=self._skip_locked,
                )
            if not rows:
                return published
            seqs = [row.seq for row in rows]
            try:
                await self._publisher.publish([row.event for row in rows])
            except MessagingUnavailable:
                await self._release(seqs)
                raise
            async with self._database.autocommit() as conn:
                await mark_published(conn, seqs, published_at=datetime.now(UTC))
            published += len(rows)
            log.debug("outbox.published", relay=self._name, count=len(rows), last_seq=seqs[-1])
            if len(rows) < batch_size:
                return published

    async def run(self) -> None:
        """Pass on every wake-up and every `sweep_interval_s`, until cancelled."""
        while True:
            self._wakeup.clear()
            try:
                count = await self.publish_pending()
            except (MessagingUnavailable, SQLAlchemyError) as exc:
                self._failures += 1
                delay_s = self._backoff_s()
                log.warning("outbox.publish_failed", relay=self._name, error=str(exc), retry_in_s=round(delay_s, 3))
                await self._sample_backlog()
                # Wake-ups during the back-off are kept (the event stays set) but do not cut it short.
                await asyncio.sleep(delay_s)
                continue
            if self._failures:
                log.info("outbox.publish_resumed", relay=self._name, published=count)
                self._failures = 0
            await self._sample_backlog()
            await self._wait_for_wakeup(self._settings.sweep_interval_s)

    async def _sample_backlog(self) -> None:
        # Throttled: under load passes come back to back, and the gauges need no more than the sweep's pace.
        now = time.monotonic()
        if now < self._next_backlog_sample:
            return
        self._next_backlog_sample = now + self._settings.sweep_interval_s
        try:
            async with self._database.reading() as conn:
                count, oldest = await fetch_backlog(conn)
        except SQLAlchemyError as exc:
            log.warning("outbox.backlog_unavailable", relay=self._name, error=str(exc))
            return
        metrics.OUTBOX_BACKLOG.set(count)
        metrics.OUTBOX_OLDEST_AGE.set((datetime.now(UTC) - oldest).total_seconds() if oldest is not None else 0.0)

    def _backoff_s(self) -> float:
        ceiling = min(self._settings.max_backoff_s, INITIAL_BACKOFF_S * 2.0 ** (self._failures - 1))
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret

    async def _wait_for_wakeup(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._wakeup.wait()

    async def _release(self, seqs: list[int]) -> None:
        try:
            async with self._database.autocommit() as conn:
                await release_claims(conn, seqs)
        except SQLAlchemyError as exc:
            # The lease runs out by itself; releasing only lets the retry start sooner.
            log.warning("outbox.release_failed", relay=self._name, error=str(exc))
