"""Kafka adapter. `client` wraps aiokafka (typed producer, manually committing consumer, topic creation)."""
