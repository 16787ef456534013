"""Prometheus metrics the use cases record; `api/` exposes the default registry at `/metrics`.

Label values are bounded (payment statuses, outcome kinds): never ids. The gauges of the whole store
(unknown payments, outbox backlog and age) read the same figure in every replica that exports them:
aggregate them with `max`, not `sum` (docs/operations.md).
"""

from prometheus_client import Counter, Gauge, Histogram

from payment_service.domain.payments import ChargeOutcomeKind, PaymentStatus

PAYMENTS = Counter("payment_service_payments", "Payments recorded, by resulting status.", ["status"])
GATEWAY_LATENCY = Histogram(
    "payment_service_gateway_request_seconds",
    "Time from sending a charge to reading the gateway's answer, by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0),
)
ORDER_UPDATE_FAILURES = Counter(
    "payment_service_order_update_failures",
    "Orders whose payment status could not be set through the db-service after a payment (the consumer sets it).",
)

# Children resolved once: a label look-up per request costs more than the increment.
PAYMENTS_BY_STATUS = {status: PAYMENTS.labels(status=status.value) for status in PaymentStatus}
GATEWAY_LATENCY_BY_OUTCOME = {kind: GATEWAY_LATENCY.labels(outcome=kind.value) for kind in ChargeOutcomeKind}
GATEWAY_LATENCY_UNAVAILABLE = GATEWAY_LATENCY.labels(outcome="unavailable")

# The reconciler (services/reconciliation.py).
UNKNOWN_PAYMENTS = Gauge(
    "payment_service_unknown_payments", "Payments whose outcome is unknown, as of the reconciler's last round."
)
RECONCILIATIONS = Counter(
    "payment_service_reconciliations", "Payments the reconciler looked at, by result.", ["result"]
)
RECONCILER_PAYMENT_FAILURES = Counter(
    "payment_service_reconciler_payment_failures",
    "Payments whose look-up failed unexpectedly in a reconciler round (logged; the round went on).",
)
UNCONFIRMED_MATCHES = Counter(
    "payment_service_reconciler_unconfirmed_matches",
    "Looks at an unresolved payment that found a matching gateway transaction naming no attempt (left unknown).",
)
GATEWAY_CLOCK_SKEW = Gauge(
    "payment_service_gateway_clock_skew_seconds",
    "The gateway's clock minus ours, last measured: from the Date header of its answers (each round), or our last"
    " found charge's submit time minus our sending time (both include the network's delay).",
)
ORDER_REFUSED_PAYMENTS = Counter(
    "payment_service_order_refused_payments",
    "Payments the db-service refused on their order (409), by reason: order_cancelled, order_already_paid.",
    ["reason"],
)
TIME_TO_RESOLVE = Histogram(
    "payment_service_time_to_resolve_seconds",
    "Time from sending a charge (or holding it for review) to the reconciler settling it, by the status it left.",
    ["from_status"],
    buckets=(1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0),
)

# The outbox relays (services/outbox_relay.py), sampled at most once per sweep interval.
OUTBOX_BACKLOG = Gauge("payment_service_outbox_backlog", "Outbox rows not yet acknowledged by the broker.")
OUTBOX_OLDEST_AGE = Gauge(
    "payment_service_outbox_oldest_age_seconds", "Age of the oldest outbox row not yet acknowledged (0 when none)."
)

# Refunds and voids (services/refunds.py, services/refund_reconciliation.py).
REFUNDS = Counter(
    "payment_service_refunds",
    "Refunds and voids recorded, by kind, origin and resulting status.",
    ["kind", "origin", "status"],
)
CHARGE_REVERSALS = Counter(
    "payment_service_charge_reversals",
    "Approved charges the order refused (db-service reason), by whether they were given back or left for a person.",
    ["reason", "result"],
)
ORDER_UPDATES_OVERDUE = Gauge(
    "payment_service_order_updates_overdue",
    "Approved payments whose order is still to be told (or whose refused charge is still to be given back) "
    "past the grace, as of the order update sweep's last pass.",
)
UNSETTLED_REFUNDS = Gauge(
    "payment_service_unsettled_refunds", "Refunds whose outcome is unknown, as of the refund reconciler's last round."
)

# Gateway webhooks (services/webhooks.py).
WEBHOOK_NOTIFICATIONS = Counter(
    "payment_service_webhook_notifications",
    "Gateway notifications by what became of them: received, duplicate, rejected (signature), then applied, "
    "unchanged, not_ours, ignored, or retry (could not be applied yet).",
    ["result"],
)
