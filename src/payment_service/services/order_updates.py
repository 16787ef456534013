"""The order of an approved payment is told until the db-service accepted it, or its refusal was acted on.

Storing an approval also records that the order must still be told (`store/order_updates_due.py`), in
the same transaction. `tell_order` is what the pay flow and the reconciler do right after: update the
order; when it refuses the charge (cancelled meanwhile, or paid by another attempt) give the money back
(`reverse_refused_charge`); and delete the record once that is done. Whatever a crash, an unreachable
db-service or a failed reversal leaves is taken by `OrderUpdateSweep` in the worker: each record leased to
one sweep at a time, tried `order_update_grace_s` after the approval and then with a doubling backoff. A
reversal that failed `reversal_attempts` times is left for a person (logged as an error and counted
once, `payment_service_charge_reversals{result="left_for_a_person"}`), and the record deleted.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

import structlog
from sqlalchemy.exc import SQLAlchemyError

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.payments import Payment, PaymentStatus
from payment_service.domain.refunds import RefundOrigin, RefundStatus
from payment_service.services import metrics
from payment_service.services.orders import ORDER_REFUSALS, OrderUpdate, update_order_payment_status
from payment_service.services.refunds import RefundService, reverse_refused_charge
from payment_service.settings import ReconcilerSettings
from payment_service.store import order_updates_due
from payment_service.store import payments as payment_rows
from payment_service.store import refunds as refund_rows
from payment_service.store.database import Database

log = structlog.get_logger(__name__)

# Nothing is left to tell once the charge was given back in full.
_GIVEN_BACK: Final = frozenset({PaymentStatus.VOIDED, PaymentStatus.REFUNDED})
# Still holding the order's money: the order is told its status.
_TOLD: Final = frozenset({PaymentStatus.APPROVED, PaymentStatus.PARTIALLY_REFUNDED})
_IN_FLIGHT: Final = frozenset({RefundStatus.PROCESSING, RefundStatus.UNKNOWN})


class SweepResult(StrEnum):
    """What one sweep did with one due order update."""

    UPDATED = "updated"  # the db-service accepted it
    GIVEN_BACK = "given_back"  # refused, and the charge was given back
    LEFT_FOR_A_PERSON = "left_for_a_person"  # refused, and the reversal failed every attempt
    RETRY = "retry"  # not done yet (db-service unreachable, reversal failed or still unsettled)


async def tell_order(
    database: Database,
    db_service: DbServiceClient,
    refunds: RefundService | None,
    payment: Payment,
    *,
    clearances: order_updates_due.Clearances | None = None,
) -> tuple[OrderUpdate, Payment]:
    """Update the order of `payment`, give the charge back if it refuses it; the answer and the payment as it stands.

    The order update due since the approval is deleted when the db-service accepted the update or the
    charge was given back (through `clearances`, shared with concurrent callers, when given); otherwise,
    or when that delete fails, the sweep tries again.
    """
    update = await update_order_payment_status(db_service, payment)
    after = payment
    if update in ORDER_REFUSALS:
        after = await reverse_refused_charge(refunds, payment, reason=update.value)
    # Only an approval records an update due (`store/payments.update_payment`).
    if payment.status is PaymentStatus.APPROVED and (update is OrderUpdate.UPDATED or after.status in _GIVEN_BACK):
        try:
            if clearances is not None:
                await clearances.clear(payment.payment_id)
            else:
                async with database.autocommit() as conn:  # one statement: on PostgreSQL no BEGIN and COMMIT
                    await order_updates_due.clear_due(conn, payment.payment_id)
        except SQLAlchemyError as exc:
            # Met, only its record is left: the sweep tells the order once more (idempotent) and deletes it.
            # The payment is charged and recorded; failing here would answer the customer an error.
            log.warning("order_update.clear_failed", payment_id=payment.payment_id, error=type(exc).__name__)
    return update, after


class OrderUpdateSweep:
    """Retries the order updates that are due (`run` in the worker, `sweep_once` for one pass)."""

    def __init__(
        self,
        *,
        database: Database,
        db_service: DbServiceClient,
        refunds: RefundService | None,
        settings: ReconcilerSettings,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._database = database
        self._db_service = db_service
        self._refunds = refunds
        self._settings = settings
        self._now = clock or (lambda: datetime.now(UTC))

    async def run(self) -> None:
        """Sweep every `interval_s` until cancelled; a failed pass is logged and the next one tries again."""
        log.info("order_update_sweep.started", interval_s=self._settings.interval_s)
        try:
            while True:
                try:
                    await self.sweep_once()
                except SQLAlchemyError as exc:
                    log.warning("order_update_sweep.store_unavailable", error=type(exc).__name__)
                except Exception:  # the loop must outlive any one bad pass
                    log.exception("order_update_sweep.crashed")
                await asyncio.sleep(self._settings.interval_s)
        finally:
            log.info("order_update_sweep.stopped")

    async def sweep_once(self) -> dict[str, SweepResult]:
        """Try each due order update this sweep can lease; what became of each, by payment id."""
        now = self._now()
        due_before = now - timedelta(seconds=self._settings.order_update_grace_s)
        async with self._database.reading() as conn:
            candidates = await order_updates_due.fetch_due(
                conn, due_before=due_before, now=now, limit=self._settings.batch_size
            )
        results: dict[str, SweepResult] = {}
        for payment_id in candidates:
            async with self._database.transaction() as conn:
                attempts = await order_updates_due.claim_due(
                    conn,
                    payment_id,
                    due_before=due_before,
                    now=now,
                    lease_until=now + timedelta(seconds=self._settings.lease_s),
                )
            if attempts is None:  # another sweep holds it, or it was met meanwhile
                continue
            try:
                result = await self._try(payment_id, attempts)
            except Exception:  # this one is retried after its lease; the others go on
                log.exception("order_update_sweep.payment_failed", payment_id=payment_id)
                continue
            results[payment_id] = result
            async with self._database.transaction() as conn:
                if result is SweepResult.RETRY:
                    backoff_s = min(self._settings.interval_s * 2**attempts, self._settings.max_backoff_s)
                    await order_updates_due.put_off(
                        conn, payment_id, due_at=now + timedelta(seconds=backoff_s), attempts=attempts + 1
                    )
                else:
                    await order_updates_due.clear_due(conn, payment_id)
        async with self._database.reading() as conn:
            metrics.ORDER_UPDATES_OVERDUE.set(await order_updates_due.count_due(conn, due_before=due_before))
        return results

    async def _try(self, payment_id: str, attempts: int) -> SweepResult:
        async with self._database.reading() as conn:
            payment = await payment_rows.fetch_payment(conn, payment_id)
            refunds = await refund_rows.fetch_refunds_for_payment(conn, payment_id)
        if payment is None or payment.status not in _TOLD:
            return (
                SweepResult.GIVEN_BACK if payment is not None and payment.status in _GIVEN_BACK else SweepResult.UPDATED
            )
        reversals = [r for r in refunds if r.origin is RefundOrigin.AUTOMATIC]
        if any(r.status in _IN_FLIGHT for r in reversals):
            return SweepResult.RETRY  # the refund reconciler settles it first; never a second one meanwhile
        failed = sum(1 for r in reversals if r.status is RefundStatus.FAILED)
        update = await update_order_payment_status(self._db_service, payment)
        if update is OrderUpdate.UPDATED:
            log.info("order_update_sweep.updated", payment_id=payment_id, order_id=payment.order_id, attempts=attempts)
            return SweepResult.UPDATED
        if update not in ORDER_REFUSALS:
            return SweepResult.RETRY
        if failed >= self._settings.reversal_attempts:
            metrics.CHARGE_REVERSALS.labels(reason=update.value, result="left_for_a_person").inc()
            log.error("payment.charge_not_reversed", payment_id=payment_id, order_id=payment.order_id, attempts=failed)
            return SweepResult.LEFT_FOR_A_PERSON
        after = await reverse_refused_charge(self._refunds, payment, reason=update.value)
        return SweepResult.GIVEN_BACK if after.status in _GIVEN_BACK else SweepResult.RETRY
