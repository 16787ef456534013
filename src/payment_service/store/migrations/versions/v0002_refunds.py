"""Refunds and voids: the `refunds` table, and partly refunded payments still hold their order.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ACTIVE_BEFORE = sa.text("status IN ('approved', 'held_for_review', 'processing', 'unknown')")
_ACTIVE_AFTER = sa.text("status IN ('approved', 'held_for_review', 'partially_refunded', 'processing', 'unknown')")


def _active_order_index(where: sa.TextClause) -> None:
    op.drop_index("uq_payments_active_order", table_name="payments")
    op.create_index(
        "uq_payments_active_order", "payments", ["order_id"], unique=True, sqlite_where=where, postgresql_where=where
    )


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("refund_id", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("amount", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("ref_id", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("transaction_id", sa.String(length=32), nullable=True),
        sa.Column("response_code", sa.String(length=8), nullable=True),
        sa.Column("reason_code", sa.String(length=16), nullable=True),
        sa.Column("gateway_message", sa.String(length=512), nullable=True),
        sa.Column("account_number", sa.String(length=32), nullable=True),
        sa.Column("account_type", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("refund_id", name="pk_refunds"),
        sa.UniqueConstraint("ref_id", name="uq_refunds_ref_id"),
        sa.UniqueConstraint("transaction_id", name="uq_refunds_transaction_id"),
    )
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"])
    op.create_index("ix_refunds_status_updated_at", "refunds", ["status", "updated_at"])
    _active_order_index(_ACTIVE_AFTER)


def downgrade() -> None:
    _active_order_index(_ACTIVE_BEFORE)
    op.drop_table("refunds")
