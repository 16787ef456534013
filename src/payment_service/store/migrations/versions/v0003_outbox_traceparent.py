"""The outbox keeps the trace an event was written in (`traceparent`), for its Kafka record.

The column may already be there: a store created on start just before migrations existed got it from
the tables themselves, and is stamped at the baseline; so it is added only when missing.

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
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("outbox")}
    if "traceparent" not in columns:
        op.add_column("outbox", sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("traceparent")
