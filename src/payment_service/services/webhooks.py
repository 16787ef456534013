"""`WebhookService`: gateway notifications, stored first and applied from the store.

`receive` checks the signature, stores the notification (once per `notificationId`) and returns: the
HTTP answer never waits for the gateway or the db-service. `process_pending` takes stored, unprocessed
notifications under a lease and applies each: the API runs it right after each commit (`run` with a
wake-up), the worker every `sweep_interval_s` for what a crashed API left. A notification is marked
processed in the transaction after it was applied; applying it twice changes nothing, as every change
goes through the reconciler's version-guarded settle of a payment that is still undecided.

Nothing in a payload is trusted beyond routing: the transaction is re-read with `getTransactionDetails`,
and the payment found by the transaction id we recorded, or else by the attempt id the transaction
echoes (`order.description`, `transrefId`).
Held and unknown payments are settled by the reconciler (`Reconciler.settle`); refunds and voids made
at the gateway are recorded by `RefundService.record_external_refund`, once per gateway transaction.
"""

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from payment_service.domain.charge_identity import echoed_ref_ids
from payment_service.domain.errors import (
    DbServiceError,
    DbServiceUnavailable,
    GatewayConfigurationError,
    GatewayError,
    GatewayUnavailable,
    WebhookSignatureInvalid,
)
from payment_service.domain.notifications import (
    REFUND_EVENTS,
    GatewayNotification,
    NotificationOutcome,
)
from payment_service.domain.payments import Payment, PaymentStatus
from payment_service.domain.transactions import TransactionDetails
from payment_service.gateway.client import AuthorizeNetGateway
from payment_service.gateway.webhooks import parse_notification, verify_signature
from payment_service.services import metrics
from payment_service.services.reconciliation import Reconciler, ReconcileResult
from payment_service.services.refunds import RefundService
from payment_service.settings import WebhookSettings
from payment_service.store import payments as payment_rows
from payment_service.store import refunds as refund_rows
from payment_service.store import webhooks as notification_rows
from payment_service.store.database import Database, is_sqlite

log = structlog.get_logger(__name__)

# Reconciler results that leave the notification to be applied again later.
_RETRY: frozenset[ReconcileResult] = frozenset({ReconcileResult.DEFERRED, ReconcileResult.ERROR})
_UNDECIDED: frozenset[PaymentStatus] = frozenset({PaymentStatus.HELD_FOR_REVIEW, PaymentStatus.UNKNOWN})


class NotificationNotApplied(Exception):
    """The notification could not be applied now (gateway or db-service trouble): it is taken again later."""


class WebhookService:
    def __init__(
        self,
        *,
        database: Database,
        gateway: AuthorizeNetGateway,
        reconciler: Reconciler,
        refunds: RefundService,
        settings: WebhookSettings,
        signature_key: str,
        wakeup: asyncio.Event | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._database = database
        self._gateway = gateway
        self._reconciler = reconciler
        self._refunds = refunds
        self._settings = settings
        self._signature_key = signature_key
        self._wakeup = wakeup or asyncio.Event()
        self._now = clock or (lambda: datetime.now(UTC))
        self._skip_locked = not is_sqlite(database.engine)

    async def receive(self, body: bytes, *, signature: str | None) -> bool:
        """Verify and store one notification; True when it is new. Wakes `run` to apply it.

        Raises:
            WebhookSignatureInvalid: missing or wrong signature; nothing is stored.
            InvalidRequest: a signed body that is not a notification; nothing is stored.
        """
        try:
            verify_signature(body, signature, signature_key=self._signature_key)
        except WebhookSignatureInvalid:
            metrics.WEBHOOK_NOTIFICATIONS.labels(result="rejected").inc()
            raise
        notification = parse_notification(body)
        stored = await notification_rows.add_notification(
            self._database, notification, body=body, received_at=self._now()
        )
        metrics.WEBHOOK_NOTIFICATIONS.labels(result="received" if stored else "duplicate").inc()
        log.info(
            "webhook.received",
            notification_id=notification.notification_id,
            event_type=notification.event_type,
            transaction_id=notification.transaction_id,
            duplicate=not stored,
        )
        if stored:
            self._wakeup.set()
        return stored

    async def run(self) -> None:
        """Apply stored notifications on every wake-up and every `sweep_interval_s`, until cancelled."""
        while True:
            self._wakeup.clear()
            try:
                await self.process_pending()
            except SQLAlchemyError as exc:
                log.warning("webhook.store_unavailable", error=type(exc).__name__)
            except Exception:  # the loop must outlive any one bad pass; stored notifications wait for the next
                log.exception("webhook.pass_crashed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.sweep_interval_s):
                    await self._wakeup.wait()

    async def process_pending(self) -> int:
        """Apply every stored notification nobody else holds; the number applied or found settled."""
        done = 0
        while True:
            now = self._now()
            async with self._database.transaction() as conn:
                claimed = await notification_rows.claim_unprocessed(
                    conn,
                    limit=self._settings.batch_size,
                    now=now,
                    lease_until=now + timedelta(seconds=self._settings.lease_s),
                    skip_locked=self._skip_locked,
                )
            for stored in claimed:
                done += await self._process(stored.notification)
            if len(claimed) < self._settings.batch_size:
                return done

    async def _process(self, notification: GatewayNotification) -> int:
        try:
            outcome = await self.apply(notification)
        except (NotificationNotApplied, GatewayUnavailable, GatewayConfigurationError, GatewayError) as exc:
            log.warning("webhook.apply_failed", notification_id=notification.notification_id, error=str(exc))
            metrics.WEBHOOK_NOTIFICATIONS.labels(result="retry").inc()
            async with self._database.transaction() as conn:
                await notification_rows.record_failure(
                    conn,
                    notification.notification_id,
                    error=str(exc),
                    retry_at=self._now() + timedelta(seconds=self._settings.retry_s),
                )
            return 0
        async with self._database.transaction() as conn:
            await notification_rows.mark_processed(
                conn, notification.notification_id, outcome=outcome, processed_at=self._now()
            )
        metrics.WEBHOOK_NOTIFICATIONS.labels(result=outcome.value).inc()
        log.info(
            "webhook.processed",
            notification_id=notification.notification_id,
            event_type=notification.event_type,
            outcome=outcome.value,
        )
        return 1

    async def apply(self, notification: GatewayNotification) -> NotificationOutcome:
        """Apply what the gateway's record of the notified transaction says; safe to repeat.

        Raises:
            NotificationNotApplied: the change must wait (the pay flow is still charging the payment, or the
                db-service could not be read for `order.paid`).
            GatewayUnavailable, GatewayConfigurationError, GatewayError: the transaction could not be read.
        """
        event = notification.event
        if event is None or notification.transaction_id is None:
            return NotificationOutcome.IGNORED
        details = await self._gateway.fetch_transaction_details(notification.transaction_id)
        if details is None:
            return NotificationOutcome.NOT_OURS
        if event in REFUND_EVENTS:
            return await self._record_refund(details)
        payment = await self._find_payment(details.transaction_id, echoed_ref_ids(details))
        if payment is None:
            return NotificationOutcome.NOT_OURS
        if payment.status is PaymentStatus.PROCESSING:
            # The gateway notifies as it answers: the pay flow may still be reading that answer.
            raise NotificationNotApplied(f"payment {payment.payment_id} is still being charged")
        if payment.status not in _UNDECIDED:
            return NotificationOutcome.UNCHANGED
        result = await self._reconciler.settle(payment, transaction_id=details.transaction_id)
        if result in _RETRY:
            raise NotificationNotApplied(f"payment {payment.payment_id} could not be settled now ({result.value})")
        changed = result in {ReconcileResult.ADOPTED, ReconcileResult.REVIEWED, ReconcileResult.NOT_CHARGED}
        return NotificationOutcome.APPLIED if changed else NotificationOutcome.UNCHANGED

    async def _record_refund(self, details: TransactionDetails) -> NotificationOutcome:
        """A refund or void made outside the service (or one of ours whose answer was lost)."""
        async with self._database.reading() as conn:
            known = await refund_rows.fetch_refund_by_transaction_id(conn, details.transaction_id)
        if known is not None and known.is_settled:
            return NotificationOutcome.UNCHANGED
        try:
            recorded = await self._refunds.record_external_refund(details)
        except (DbServiceUnavailable, DbServiceError) as exc:
            raise NotificationNotApplied(f"the refund's order could not be read ({exc.code})") from exc
        return NotificationOutcome.APPLIED if recorded is not None else NotificationOutcome.NOT_OURS

    async def _find_payment(self, transaction_id: str, ref_ids: Iterable[str]) -> Payment | None:
        """The payment recording `transaction_id`, else the attempt the transaction names."""
        async with self._database.reading() as conn:
            for payment_id in await payment_rows.fetch_payment_ids_by_transaction_id(conn, transaction_id):
                return await payment_rows.fetch_payment(conn, payment_id)
            for ref_id in ref_ids:
                payment = await payment_rows.fetch_payment_by_ref_id(conn, ref_id)
                if payment is not None:
                    return payment
        return None
