"""Outbox rows keep the trace context of the request that wrote them (`outbox.traceparent`).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store created on start (before migrations) by a build that already had the column is stamped at
    # the baseline and comes through here with it.
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("outbox")}
    if "traceparent" not in columns:
        op.add_column("outbox", sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("traceparent")
