"""The outbox keeps each event's trace context (W3C traceparent), continued by its Kafka record.

The column may already be there: a store created on start just before migrations existed got it from
the tables themselves, and is stamped at the baseline; so it is added only when missing.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("outbox")}
    if "traceparent" in columns:
        return
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("traceparent")
