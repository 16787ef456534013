"""Gateway webhook notifications (stored before they are answered) and operators' manual resolutions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_notifications",
        sa.Column("notification_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("transaction_id", sa.String(length=32), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("processed_at", _utc(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", _utc(), nullable=True),
        sa.Column("last_error", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("notification_id", name="pk_webhook_notifications"),
    )
    unprocessed = sa.text("processed_at IS NULL")
    op.create_index(
        "ix_webhook_notifications_unprocessed",
        "webhook_notifications",
        ["received_at"],
        sqlite_where=unprocessed,
        postgresql_where=unprocessed,
    )
    op.create_table(
        "payment_resolutions",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=False),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("transaction_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("resolved_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_payment_resolutions"),
    )
    op.create_index("ix_payment_resolutions_payment_id", "payment_resolutions", ["payment_id"])


def downgrade() -> None:
    op.drop_table("payment_resolutions")
    op.drop_table("webhook_notifications")
