"""`Reconciler`: settles payments whose outcome the pay flow could not learn, from the gateway itself.

Each round looks at three kinds of payment:
* `unknown`: the charge was sent and no answer was read (time-out, reset), or the gateway called it a
  duplicate (reason 11) of an earlier charge;
* `processing` whose charge was sent more than `processing_grace_s` ago: the process died between
  sending and recording;
* `held_for_review`: the fraud filters held it, and a person at the gateway decides.

An attempt is found at the gateway by its transaction id when we have one, else by searching the
transactions submitted since its `sent_at`, minus a margin for clock skew (`lookback_margin_s`, and
more when the gateway's clock was measured behind ours, on a found charge or by the `Date` header of
any of its answers): first the unsettled ones, paged newest first
until a short page, then those of the batches settled since then (a charge that settled before the
reconciler looked, say the worker was down across a settlement). Rows of its invoice number and card
are checked through their details (`charge_identity.py`): nothing may contradict the attempt, and an
echoed field (`order.description`, or `transrefId` when the gateway fills it) must name it. A
duplicate's original charge names another attempt: it is adopted only when no other payment of ours
records that transaction. Found, settled or not: adopt the transaction and its status. A match that
names no attempt at all keeps the payment `unknown` for a person (`unconfirmed`), never "not charged".
Not found `not_found_grace_s` after sending: `failed` (not charged). Otherwise wait for the next round.
The gateway's duplicate window outlasts that grace plus the skew margin (checked at start), so a
same-card retry after a wrong "not charged" is still refused by the gateway.

Each payment is looked at on its own: an unexpected error with one is logged and counted, and the
round goes on with the next.

Every change is one local transaction (the version-guarded status change, its transition and its outbox
rows), then a best-effort update of the order at the db-service, made only while the order names no
other payment. The reconciler only reads from the
gateway: it never charges and never re-sends. A payment changed meanwhile (the pay flow finishing late)
is skipped, as the version guard fails for whoever writes second.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

import structlog
from sqlalchemy.exc import SQLAlchemyError

from payment_service.db_service.client import DbServiceClient
from payment_service.domain.charge_identity import Identity, identify, is_candidate
from payment_service.domain.errors import (
    DbServiceError,
    DbServiceUnavailable,
    GatewayConfigurationError,
    GatewayError,
    GatewayUnavailable,
    OrderNotFound,
    PaymentVersionConflict,
)
from payment_service.domain.orders import Order
from payment_service.domain.payments import GatewayResult, Payment, PaymentStatus
from payment_service.domain.transactions import TransactionDetails, TransactionSummary
from payment_service.gateway.client import AuthorizeNetGateway, is_last_page
from payment_service.gateway.outcomes import DUPLICATE_REASONS
from payment_service.services import metrics
from payment_service.services.order_updates import tell_order
from payment_service.services.orders import (
    OrderUpdate,
    fetch_order_context,
)
from payment_service.services.payment_events import OrderContext, payment_events
from payment_service.services.refunds import RefundService
from payment_service.settings import ReconcilerSettings
from payment_service.store import outbox, reconciliation_leases
from payment_service.store import payments as payment_rows
from payment_service.store.database import Database

log = structlog.get_logger(__name__)

NOT_FOUND_MESSAGE: Final = "No transaction was found at the gateway; the card was not charged."
UNCONFIRMED_MESSAGE: Final = "Gateway transaction {} matches but names no attempt; a person must decide."
# Gateway statuses that leave a payment as it is: still held, or a value we cannot read.
_UNDECIDED: Final = frozenset({PaymentStatus.HELD_FOR_REVIEW, PaymentStatus.UNKNOWN, PaymentStatus.PROCESSING})
_MAX_PAGES: Final = 100_000  # the gateway's own bound on `paging.offset`


class ReconcileResult(StrEnum):
    ADOPTED = "adopted"  # found at the gateway: its transaction and status adopted
    NOT_CHARGED = "not_charged"  # not found after the grace period: recorded failed
    REVIEWED = "reviewed"  # a held payment was decided at the gateway
    PENDING = "pending"  # nothing to change yet: not found within the grace, or still held
    CONFLICT = "conflict"  # the payment changed meanwhile: skipped
    DEFERRED = "deferred"  # the order could not be read from the db-service for order.paid: next round
    ERROR = "error"  # the gateway answered the look-up with an error, or looking failed: next round
    UNCONFIRMED = "unconfirmed"  # a matching transaction names no attempt: left unknown for a person


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What one round did."""

    results: Mapping[str, ReconcileResult]  # by payment id, for every payment looked at
    changed: tuple[Payment, ...]  # payments stored with a new status, as stored
    gateway_unavailable: bool = False  # the round stopped early; the rest waits for the next round

    def count(self, result: ReconcileResult) -> int:
        return sum(1 for found in self.results.values() if found is result)


# What settling one payment gave, and the payment as stored when it changed.
_Settled = tuple[ReconcileResult, Payment | None]


@dataclass(slots=True)
class _Round:
    results: dict[str, ReconcileResult] = field(default_factory=dict)
    changed: list[Payment] = field(default_factory=list)
    gateway_unavailable: bool = False

    def report(self) -> ReconcileReport:
        return ReconcileReport(dict(self.results), tuple(self.changed), self.gateway_unavailable)


def is_duplicate(payment: Payment) -> bool:
    """Whether the gateway called this attempt a duplicate of an earlier charge (reason 11)."""
    return payment.gateway is not None and payment.gateway.reason_code in DUPLICATE_REASONS


@dataclass(frozen=True, slots=True)
class _Found:
    """What a search turned up: the attempt's own charge, or else a match naming no attempt."""

    details: TransactionDetails | None = None
    unconfirmed: TransactionDetails | None = None


def adopt_transaction(payment: Payment, details: TransactionDetails, *, now: datetime) -> Payment:
    """`payment` one version on, with the gateway's record of its transaction and the status it implies."""
    status = details.status.payment_status
    charged = status in {PaymentStatus.APPROVED, PaymentStatus.REFUNDED}
    return replace(
        payment,
        status=status,
        gateway=GatewayResult(
            transaction_id=details.transaction_id,
            auth_code=details.auth_code or None,
            response_code=details.response_code or None,
            reason_code=details.reason_code or None,
            message=details.reason_description or None,
            avs_result=details.avs_result or None,
            cvv_result=details.cvv_result or None,
            account_number=details.account_number,
            account_type=details.account_type,
        ),
        version=payment.version + 1,
        updated_at=now,
        card_last4=payment.card_last4 or details.card_last4,
        card_brand=payment.card_brand or details.account_type,
        captured_amount=payment.amount.amount if charged else Decimal(0),
        refunded_amount=payment.amount.amount if status is PaymentStatus.REFUNDED else Decimal(0),
    )


def mark_not_charged(payment: Payment, *, now: datetime) -> Payment:
    """`payment` one version on, `failed`: the gateway has no transaction for it."""
    return replace(
        payment,
        status=PaymentStatus.FAILED,
        gateway=replace(payment.gateway or GatewayResult(), transaction_id=None, message=NOT_FOUND_MESSAGE),
        version=payment.version + 1,
        updated_at=now,
        captured_amount=Decimal(0),
    )


class Reconciler:
    def __init__(
        self,
        *,
        database: Database,
        gateway: AuthorizeNetGateway,
        db_service: DbServiceClient,
        settings: ReconcilerSettings,
        clock: Callable[[], datetime] | None = None,  # aware UTC now; tests pin it
        # Called after every commit that added outbox rows, to wake an in-process relay at once.
        outbox_written: Callable[[], None] | None = None,
        # Gives back an adopted charge whose order refused it (cancelled meanwhile, paid by another attempt).
        refunds: RefundService | None = None,
    ) -> None:
        self._refunds = refunds
        self._database = database
        self._gateway = gateway
        self._db_service = db_service
        self._settings = settings
        self._now = clock or (lambda: datetime.now(UTC))
        self._outbox_written = outbox_written
        self.rounds = 0  # rounds `run` finished, including failed ones
        # Gateway clock minus ours, as last measured on a charge of ours; widens the searches when negative.
        self.clock_skew_s: float | None = None

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        """Reconcile every `interval_s` until cancelled; while the gateway is unavailable, back off."""
        interval_s = self._settings.interval_s
        delay_s = interval_s
        log.info("reconciler.started", interval_s=interval_s)
        try:
            while True:
                healthy = await self._round()
                self.rounds += 1
                delay_s = interval_s if healthy else min(delay_s * 2, max(self._settings.max_backoff_s, interval_s))
                await asyncio.sleep(delay_s)
        finally:
            log.info("reconciler.stopped", rounds=self.rounds)

    async def _round(self) -> bool:
        """One round of `run`; False when it could not reach the gateway or the store."""
        try:
            report = await self.reconcile_once()
        except SQLAlchemyError as exc:
            log.warning("reconciler.store_unavailable", error=type(exc).__name__)
            return False
        except Exception:  # the loop must outlive any one bad round; the next round tries again
            log.exception("reconciler.round_crashed")
            return False
        return not report.gateway_unavailable

    # ------------------------------------------------------------------ one round

    async def reconcile_once(self) -> ReconcileReport:
        """Look at every unresolved payment once; see the module docstring for what is decided how.

        Stops early when the gateway is unavailable or rejects our credentials (`gateway_unavailable`).
        Never charges or re-sends anything; safe to run beside the pay flow and other reconcilers.
        """
        now = self._now()
        processing_cutoff = now - timedelta(seconds=self._settings.processing_grace_s)
        limit = self._settings.batch_size
        async with self._database.reading() as conn:
            unknown = await payment_rows.fetch_payments_by_status(
                conn, {PaymentStatus.UNKNOWN}, updated_before=now, limit=limit
            )
            stale = await payment_rows.fetch_payments_by_status(
                conn, {PaymentStatus.PROCESSING}, updated_before=processing_cutoff, limit=limit
            )
            held = await payment_rows.fetch_payments_by_status(
                conn, {PaymentStatus.HELD_FOR_REVIEW}, updated_before=now, limit=limit
            )
        stale = [p for p in stale if (p.sent_at or p.created_at) < processing_cutoff]
        # Workers share the store: each payment is looked up by the one reconciler that leased it.
        claimed = await self._claim([*unknown, *stale, *held], now)
        unknown, stale, held = ([p for p in group if p.payment_id in claimed] for group in (unknown, stale, held))
        current = _Round()
        try:
            for payment in [*unknown, *stale]:
                await self._look_at(current, payment, self._settle_attempt)
            for payment in held:
                await self._look_at(current, payment, self._settle_review)
        except (GatewayUnavailable, GatewayConfigurationError) as exc:
            log.warning("reconciler.gateway_unavailable", error=exc.code, looked_at=len(current.results))
            current.gateway_unavailable = True
        await self._release(claimed)
        async with self._database.reading() as conn:
            metrics.UNKNOWN_PAYMENTS.set(await payment_rows.count_payments_by_status(conn, PaymentStatus.UNKNOWN))
        if self._gateway.clock_skew is not None:
            metrics.GATEWAY_CLOCK_SKEW.set(self._gateway.clock_skew.skew_s)
        report = current.report()
        if report.changed or report.gateway_unavailable:
            log.info(
                "reconciler.round_finished",
                changed=len(report.changed),
                looked_at=len(report.results),
                gateway_unavailable=report.gateway_unavailable,
            )
        return report

    async def _look_at(
        self,
        current: _Round,
        payment: Payment,
        settle: Callable[[Payment], Awaitable[_Settled]],
    ) -> None:
        try:
            result, changed = await settle(payment)
        except (GatewayUnavailable, GatewayConfigurationError, SQLAlchemyError):
            raise  # nothing else can be looked at either: the round stops
        except GatewayError as exc:
            log.warning("reconciler.lookup_failed", payment_id=payment.payment_id, error=str(exc))
            result, changed = ReconcileResult.ERROR, None
        except Exception:  # one bad payment must not keep the others from being looked at
            log.exception("reconciler.payment_failed", payment_id=payment.payment_id)
            metrics.RECONCILER_PAYMENT_FAILURES.inc()
            result, changed = ReconcileResult.ERROR, None
        current.results[payment.payment_id] = result
        metrics.RECONCILIATIONS.labels(result=result.value).inc()
        if changed is not None:
            current.changed.append(changed)

    async def _settle_attempt(self, payment: Payment, *, transaction_id: str | None = None) -> _Settled:
        """An attempt in `unknown`, or stuck in `processing`: find its charge or call it not charged."""
        found = await self._find_charge(payment, transaction_id)
        details = found.details
        now = self._now()
        if details is None and found.unconfirmed is not None:
            return await self._leave_unconfirmed(payment, found.unconfirmed, now=now)
        if details is None:
            sent_at = payment.sent_at or payment.created_at
            if now - sent_at < timedelta(seconds=self._settings.not_found_grace_s):
                return ReconcileResult.PENDING, None
            if self.clock_skew_s is None and (await self._skew_on_a_known_charge() or 0.0) < 0:
                return await self._settle_attempt(payment)  # searched again, as far back as the gateway lags
            return await self._store(
                payment,
                mark_not_charged(payment, now=now),
                reason="reconciled_not_found",
                done=ReconcileResult.NOT_CHARGED,
            )
        if details.status.payment_status in _UNDECIDED - {PaymentStatus.HELD_FOR_REVIEW}:
            log.warning(
                "reconciler.status_unrecognized", payment_id=payment.payment_id, gateway_status=details.gateway_status
            )
            return ReconcileResult.PENDING, None
        adopted = adopt_transaction(payment, details, now=now)
        return await self._store(payment, adopted, reason="reconciled_found", done=ReconcileResult.ADOPTED)

    async def _settle_review(self, payment: Payment) -> _Settled:
        """A held payment: adopt the gateway's decision once a person made it."""
        transaction_id = payment.gateway.transaction_id if payment.gateway is not None else None
        if transaction_id is None:
            details = (await self._search_gateway(payment)).details
        else:
            details = await self._gateway.fetch_transaction_details(transaction_id)
        if details is None or not is_candidate(payment, details):
            log.warning("reconciler.held_transaction_missing", payment_id=payment.payment_id)
            return ReconcileResult.PENDING, None
        if details.status.payment_status in _UNDECIDED:
            return ReconcileResult.PENDING, None
        adopted = adopt_transaction(payment, details, now=self._now())
        return await self._store(payment, adopted, reason="review_decided", done=ReconcileResult.REVIEWED)

    async def settle(self, payment: Payment, *, transaction_id: str | None = None) -> ReconcileResult:
        """Settle one `unknown` or held payment now, as a round would (a webhook said its transaction changed).

        `transaction_id` is looked at first; what is adopted is still confirmed from the gateway's record.
        Any other status is left alone (`CONFLICT`): the pay flow or a round settled it already.
        """
        current = _Round()
        match payment.status:
            case PaymentStatus.HELD_FOR_REVIEW:
                await self._look_at(current, payment, self._settle_review)
            case PaymentStatus.UNKNOWN:
                await self._look_at(
                    current, payment, lambda unknown: self._settle_attempt(unknown, transaction_id=transaction_id)
                )
            case _:
                return ReconcileResult.CONFLICT
        return current.results[payment.payment_id]

    # ------------------------------------------------------------------ finding the charge

    async def confirm_charge(self, payment: Payment, transaction_id: str) -> TransactionDetails | None:
        """The gateway's record of `transaction_id` when it can be `payment`'s charge, else None.

        Nothing in it may contradict the payment (`is_candidate`), and it must name the attempt, or name
        none and be recorded by no other payment of ours (a person names it, so their word confirms it).

        Raises: GatewayUnavailable, GatewayConfigurationError, GatewayError.
        """
        details = await self._gateway.fetch_transaction_details(transaction_id)
        if details is None or not is_candidate(payment, details):
            return None
        identity = identify(payment, details)
        if identity is Identity.OURS:
            return details
        if identity is Identity.UNCONFIRMED and await self._is_unclaimed(details.transaction_id):
            return details
        return None

    async def find_possible_charge(self, payment: Payment) -> TransactionDetails | None:
        """The gateway's record of `payment`'s charge as a round finds it, or else a match naming no attempt.

        Raises: GatewayUnavailable, GatewayConfigurationError, GatewayError.
        """
        found = await self._find_charge(payment)
        return found.details or found.unconfirmed

    async def _find_charge(self, payment: Payment, hint: str | None = None) -> _Found:
        """`hint`: a transaction id the gateway named (a webhook), tried before searching."""
        known = payment.gateway.transaction_id if payment.gateway is not None else None
        for transaction_id in dict.fromkeys(t for t in (hint, known) if t is not None):
            details = await self._gateway.fetch_transaction_details(transaction_id)
            if details is not None and is_candidate(payment, details) and identify(payment, details) is Identity.OURS:
                self._measure_skew(payment, details)
                return _Found(details)
        return await self._search_gateway(payment)

    async def _search_gateway(self, payment: Payment) -> _Found:
        """The unsettled transactions first, where a charge waits until the daily settlement; then the settled."""
        # In this order, a charge settling between the two searches is in the second one.
        found = await self._search_unsettled(payment)
        if found.details is None:
            settled = await self._search_settled(payment)
            found = _Found(settled.details, found.unconfirmed or settled.unconfirmed)
        return found

    def _submitted_after(self, payment: Payment) -> datetime:
        """How far back to search: the attempt's sending time, minus a margin (the duplicate window for a duplicate).

        The margin covers clock skew; when the gateway's clock was measured behind ours, by that much more.
        """
        lookback_s = self._settings.duplicate_lookback_s if is_duplicate(payment) else self._settings.lookback_margin_s
        return (payment.sent_at or payment.created_at) - timedelta(seconds=lookback_s) - self._gateway_lag()

    def _gateway_lag(self) -> timedelta:
        """How far the gateway's clock is behind ours, by whichever measure says it lags most (zero if ahead).

        Measured on our charges' submit times and on the `Date` of every gateway answer: the latter is known
        from a fresh reconciler's first look-up, before any charge of ours was found.
        """
        answered = self._gateway.clock_skew
        skews = [s for s in (self.clock_skew_s, answered.skew_s if answered is not None else None) if s is not None]
        return timedelta(seconds=max([0.0, *(-s for s in skews)]))

    async def _search_settled(self, payment: Payment) -> _Found:
        """The rows of the batches settled since the attempt was sent, confirmed as unsettled ones are."""
        found = _Found()
        rows = self._gateway.fetch_settled_transactions(
            submitted_after=self._submitted_after(payment), page_size=self._settings.page_size
        )
        async with aclosing(rows):
            async for row in rows:
                found = await self._confirm(payment, row, found)
                if found.details is not None:
                    break
        return found

    async def _search_unsettled(self, payment: Payment) -> _Found:
        """Page the unsettled transactions newest first, back to the attempt's sending time, until a short page."""
        found = _Found()
        submitted_after = self._submitted_after(payment)
        page_size = self._settings.page_size
        for offset in range(1, _MAX_PAGES + 1):
            page = await self._gateway.fetch_unsettled_transactions(page_size, offset, newest_first=True)
            # The answer's `Date` may show the gateway lagging more than known: never stop short of that.
            submitted_after = min(submitted_after, self._submitted_after(payment))
            for row in page.transactions:
                if row.submitted_at < submitted_after:
                    return found
                found = await self._confirm(payment, row, found)
                if found.details is not None:
                    return found
            if is_last_page(page.transactions, page_size):
                break
        return found

    async def _confirm(self, payment: Payment, row: TransactionSummary, found: _Found) -> _Found:
        """`found`, with `row` as the charge when its details show it is `payment`'s, or as an unconfirmed match."""
        if row.invoice_number != payment.invoice_number:
            return found
        if payment.card_last4 is not None and row.card_last4 != payment.card_last4:
            return found
        details = await self._gateway.fetch_transaction_details(row.transaction_id)
        if details is None or not is_candidate(payment, details):
            return found
        identity = identify(payment, details)
        if identity is Identity.OURS:
            self._measure_skew(payment, details)
            return _Found(details, found.unconfirmed)
        if is_duplicate(payment) and await self._is_unclaimed(details.transaction_id):
            # The original of a duplicate: sent by an attempt of ours whose record lost it.
            return _Found(details, found.unconfirmed)
        if identity is Identity.UNCONFIRMED and found.unconfirmed is None:
            return _Found(None, details)
        return found

    def _measure_skew(self, payment: Payment, details: TransactionDetails) -> None:
        """Gateway clock minus ours, from our charge's submit time: logged, exported, and used to widen searches.

        `sent_at` is taken just before sending, so the figure also holds the network's delay (under the
        read time-out); only a negative one, or one beyond the margin, says a clock is off.
        """
        if payment.sent_at is None:
            return
        skew_s = (details.submitted_at - payment.sent_at).total_seconds()
        self.clock_skew_s = skew_s
        metrics.GATEWAY_CLOCK_SKEW.set(skew_s)
        if abs(skew_s) > self._settings.lookback_margin_s / 2:
            log.error(
                "reconciler.clock_skew_large",
                skew_s=round(skew_s, 3),
                lookback_margin_s=self._settings.lookback_margin_s,
                payment_id=payment.payment_id,
            )
        else:
            log.info("reconciler.clock_skew_measured", skew_s=round(skew_s, 3), payment_id=payment.payment_id)

    async def _skew_on_a_known_charge(self) -> float | None:
        """The skew measured on our latest approved charge; None when there is none to measure on.

        A fresh reconciler has measured nothing yet: before it calls an attempt not charged, the gateway's
        clock must be known, or a gateway lagging more than the margin hides the charge from the search.
        """
        async with self._database.reading() as conn:
            known = await payment_rows.fetch_latest_sent_charge(conn)
        transaction_id = known.gateway.transaction_id if known is not None and known.gateway is not None else None
        if known is None or transaction_id is None:
            return None
        details = await self._gateway.fetch_transaction_details(transaction_id)
        if details is None:
            return None
        self._measure_skew(known, details)
        return self.clock_skew_s

    async def _leave_unconfirmed(self, payment: Payment, details: TransactionDetails, *, now: datetime) -> _Settled:
        """A transaction matches but names no attempt: keep the payment `unknown` for a person, whatever the grace."""
        metrics.UNCONFIRMED_MATCHES.inc()
        log.error(
            "reconciler.match_unconfirmed",
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            transaction_id=details.transaction_id,
            gateway_status=details.gateway_status,
        )
        message = UNCONFIRMED_MESSAGE.format(details.transaction_id)
        if (
            payment.status is PaymentStatus.UNKNOWN
            and payment.gateway is not None
            and payment.gateway.message == message
        ):
            return ReconcileResult.UNCONFIRMED, None
        # Recorded on the payment (a crashed `processing` attempt becomes `unknown`), where operators look.
        unknown = replace(
            payment,
            status=PaymentStatus.UNKNOWN,
            gateway=replace(payment.gateway or GatewayResult(), message=message),
            version=payment.version + 1,
            updated_at=now,
        )
        return await self._store(payment, unknown, reason="reconciled_unconfirmed", done=ReconcileResult.UNCONFIRMED)

    async def _is_unclaimed(self, transaction_id: str) -> bool:
        async with self._database.reading() as conn:
            return not await payment_rows.fetch_payment_ids_by_transaction_id(conn, transaction_id)

    # ------------------------------------------------------------------ recording

    async def _store(self, previous: Payment, changed: Payment, *, reason: str, done: ReconcileResult) -> _Settled:
        """One transaction: the status change (guarded by `previous`'s version) and its outbox rows."""
        context: OrderContext | None = None
        order: Order | None = None
        try:
            # Read before the commit, so that only the update itself follows it.
            order = await self._db_service.fetch_order(changed.order_id)
            if changed.status is PaymentStatus.APPROVED:
                context = await fetch_order_context(self._db_service, order)
        except (DbServiceUnavailable, DbServiceError, OrderNotFound) as exc:
            log.warning("reconciler.order_unreadable", payment_id=changed.payment_id, error=exc.code)
            if changed.status is PaymentStatus.APPROVED:
                # order.paid cannot be built without the order: keep the payment as it is until it can.
                return ReconcileResult.DEFERRED, None
            metrics.ORDER_UPDATE_FAILURES.inc()  # stored without telling the order; the consumer sets it
        events = payment_events(changed, context)
        try:
            async with self._database.transaction() as conn:
                await payment_rows.update_payment(conn, changed, previous=previous, reason=reason)
                await outbox.add_events(conn, events)
        except PaymentVersionConflict:
            log.info("reconciler.payment_changed_meanwhile", payment_id=changed.payment_id)
            return ReconcileResult.CONFLICT, None
        if changed.status is not PaymentStatus.UNKNOWN:  # an unconfirmed match is not resolved yet
            elapsed_s = (changed.updated_at - (previous.sent_at or previous.created_at)).total_seconds()
            metrics.TIME_TO_RESOLVE.labels(from_status=previous.status.value).observe(max(elapsed_s, 0.0))
        log.info(
            "payment.reconciled",
            payment_id=changed.payment_id,
            order_id=changed.order_id,
            from_status=previous.status.value,
            status=changed.status.value,
            transaction_id=changed.gateway.transaction_id if changed.gateway else None,
            card_last4=changed.card_last4,
        )
        if events and self._outbox_written is not None:
            self._outbox_written()
        if order is not None:
            await self._update_order(changed, order)
        return done, changed

    async def _update_order(self, payment: Payment, order: Order) -> OrderUpdate:
        """Tell the db-service, unless a newer attempt now owns the order (its status must not be overwritten).

        ORDER_CANCELLED / ORDER_ALREADY_PAID: the order refused this approved payment (cancelled meanwhile,
        or paid by another attempt); the charge stands against an order that cannot take it, and this is
        where giving the money back hooks in.
        """
        if order.payment_id is not None and await self._is_newer_attempt(order.payment_id, than=payment):
            # An approved charge here stands against an order that another attempt owns: a person must look.
            level = log.error if payment.status is PaymentStatus.APPROVED else log.warning
            level(
                "reconciler.order_owned_by_other_payment",
                order_id=payment.order_id,
                payment_id=payment.payment_id,
                order_payment_id=order.payment_id,
            )
            return OrderUpdate.NOT_CURRENT
        update, _ = await tell_order(self._database, self._db_service, self._refunds, payment)
        return update

    async def _is_newer_attempt(self, payment_id: str, *, than: Payment) -> bool:
        if payment_id == than.payment_id:
            return False
        async with self._database.reading() as conn:
            other = await payment_rows.fetch_payment(conn, payment_id)
        return other is not None and other.created_at > than.created_at

    async def _claim(self, candidates: list[Payment], now: datetime) -> set[str]:
        if not candidates:
            return set()
        async with self._database.transaction() as conn:
            return await reconciliation_leases.claim_for_reconciliation(
                conn, candidates, now=now, lease_until=now + timedelta(seconds=self._settings.lease_s)
            )

    async def _release(self, claimed: set[str]) -> None:
        # Not in a finally: a round that failed on the store leaves its leases to run out.
        if claimed:
            async with self._database.transaction() as conn:
                await reconciliation_leases.release_reconciliation(conn, claimed)
