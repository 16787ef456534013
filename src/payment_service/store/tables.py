"""Tables of payment attempts, their transitions and idempotency keys (the outbox lives in `outbox.py`).

Amounts are decimal text, never floats, so SQLite and PostgreSQL store exactly what was charged.
The partial unique index `uq_payments_active_order` is the double-charge guard: at most one payment per
order may be `processing`, `unknown`, `held_for_review` or `approved`; declined and failed attempts
fall out of it, so the customer can retry with another card.
"""

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, text

from payment_service.domain.payments import ACTIVE_STATUSES
from payment_service.store.database import UtcDateTime, metadata

_ACTIVE = ", ".join(f"'{status.value}'" for status in sorted(ACTIVE_STATUSES))

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(32), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("amount", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("invoice_number", String(20), nullable=False),
    Column("ref_id", String(20), nullable=False, unique=True),
    Column("card_last4", String(4), nullable=True),
    Column("card_brand", String(32), nullable=True),
    Column("transaction_id", String(32), nullable=True),
    Column("auth_code", String(16), nullable=True),
    Column("response_code", String(8), nullable=True),
    Column("reason_code", String(16), nullable=True),
    Column("gateway_message", String(512), nullable=True),
    Column("avs_result", String(8), nullable=True),
    Column("cvv_result", String(8), nullable=True),
    Column("account_number", String(32), nullable=True),
    Column("account_type", String(32), nullable=True),
    Column("captured_amount", String(32), nullable=False, server_default="0"),
    Column("refunded_amount", String(32), nullable=False, server_default="0"),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
)
Index("ix_payments_order_id", payments.c.order_id)
Index("ix_payments_status_updated_at", payments.c.status, payments.c.updated_at)
Index("ix_payments_transaction_id", payments.c.transaction_id)
Index(
    "uq_payments_active_order",
    payments.c.order_id,
    unique=True,
    sqlite_where=text(f"status IN ({_ACTIVE})"),
    postgresql_where=text(f"status IN ({_ACTIVE})"),
)

payment_transitions = Table(
    "payment_transitions",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("payment_id", String(32), nullable=False),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
)
Index("ix_payment_transitions_payment_id", payment_transitions.c.payment_id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # in_flight | completed
    Column("payment_id", String(32), nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)
Index("ix_idempotency_keys_expires_at", idempotency_keys.c.expires_at)

# Which payments a reconciler (one per worker) is looking up at the gateway, so that N workers make the
# gateway calls of one (`store/reconciliation_leases.py`). A table of its own rather than columns on
# `payments`: the pay flow's versioned updates never touch it (migration 0003).
reconciliation_leases = Table(
    "reconciliation_leases",
    metadata,
    Column("payment_id", String(32), primary_key=True),
    Column("lease_until", UtcDateTime, nullable=False),
)
