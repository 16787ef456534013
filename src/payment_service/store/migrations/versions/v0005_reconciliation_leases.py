"""Reconciliation leases: which worker's reconciler is looking a payment up at the gateway.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_leases",
        sa.Column("payment_id", sa.String(length=32), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("payment_id", name="pk_reconciliation_leases"),
    )


def downgrade() -> None:
    op.drop_table("reconciliation_leases")
