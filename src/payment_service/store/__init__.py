"""The local store: payment attempts, idempotency keys and the outbox (SQLAlchemy 2, async, Core)."""
