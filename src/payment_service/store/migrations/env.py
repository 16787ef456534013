"""Alembic's entry: run the migrations on the connection `store/schema.py` passes in, in its transaction.

Never opens a connection of its own, so the caller's lock (PostgreSQL advisory lock, SQLite write lock)
covers every statement.
"""

from alembic import context

from payment_service.store.schema import schema_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=schema_metadata(),
    # SQLite cannot ALTER most things: later revisions rebuild tables in batch mode there.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
