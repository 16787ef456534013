"""`payment-service events tail`: print the service's events as they arrive, one JSON line each.

A development tool: it reads with a throwaway consumer group and never commits, so it disturbs no
real consumer. Each line holds the topic, partition, offset, key, every header (decoded as UTF-8)
and the data (parsed JSON when the value is JSON, else the raw text).
"""

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from payment_service.messaging.client import KafkaConsumerClient, Record
from payment_service.settings import KafkaSettings


def format_record(record: Record) -> str:
    data: Any
    try:
        data = orjson.loads(record.value) if record.value is not None else None
    except orjson.JSONDecodeError:
        data = record.value.decode(errors="replace") if record.value is not None else None
    line = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode(errors="replace") if record.key is not None else None,
        "headers": {name: value.decode(errors="replace") for name, value in record.headers},
        "data": data,
    }
    return orjson.dumps(line).decode()


async def tail_events(
    settings: KafkaSettings,
    *,
    topics: Sequence[str],
    from_beginning: bool,
    emit: Callable[[str], None],
    max_events: int | None = None,
) -> None:
    """Print events from `topics` until cancelled (or after `max_events`)."""
    consumer = KafkaConsumerClient(
        settings.bootstrap_servers,
        topics=topics,
        group_id=f"payment-service-tail-{uuid.uuid4().hex[:8]}",
        client_id="payment-service-tail",
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_uncommitted",
    )
    seen = 0
    async with consumer:
        while max_events is None or seen < max_events:
            for record in await consumer.getmany(timeout_ms=500):
                emit(format_record(record))
                seen += 1
