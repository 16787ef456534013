"""Order updates due: approved payments the db-service has not yet accepted (or whose refusal is not yet acted on).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "order_updates_due",
        sa.Column("payment_id", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("payment_id", name="pk_order_updates_due"),
    )
    op.create_index("ix_order_updates_due_due_at", "order_updates_due", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_order_updates_due_due_at", table_name="order_updates_due")
    op.drop_table("order_updates_due")
