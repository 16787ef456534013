"""The dead-letter topic as operators use it: list what is there, put entries back on the payments topic.

A replayed entry goes to the configured payments topic (never to a topic named by the record), with its
key, value and original headers, the `dlq-*` ones removed; the payment consumer's idempotent,
version-guarded upsert makes a replay of something recorded meanwhile harmless.
"""

from collections.abc import Collection, Sequence

from payment_service.domain.dead_letters import DeadLetter, DeadLetterPosition
from payment_service.messaging.client import OutgoingRecord, Record, read_topic_to_end
from payment_service.messaging.publisher import (
    DLQ_ERROR,
    DLQ_HEADERS,
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_REASON,
    EventPublisher,
)
from payment_service.settings import KafkaSettings


def _header(record: Record, name: str) -> str | None:
    return next((value.decode(errors="replace") for key, value in record.headers if key == name), None)


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def dead_letter(record: Record) -> DeadLetter:
    return DeadLetter(
        position=DeadLetterPosition(record.partition, record.offset),
        key=record.key.decode(errors="replace") if record.key is not None else None,
        event_type=_header(record, "ce_type"),
        event_id=_header(record, "ce_id"),
        reason=_header(record, DLQ_REASON),
        error=_header(record, DLQ_ERROR),
        original_partition=_number(_header(record, DLQ_ORIGINAL_PARTITION)),
        original_offset=_number(_header(record, DLQ_ORIGINAL_OFFSET)),
        timestamp_ms=record.timestamp_ms,
    )


class DeadLetterQueue:
    def __init__(self, publisher: EventPublisher, settings: KafkaSettings) -> None:
        self._publisher = publisher
        self._settings = settings

    async def _records(self) -> list[Record]:
        return await read_topic_to_end(
            self._settings.bootstrap_servers,
            self._settings.dlq_topic,
            request_timeout_ms=self._settings.request_timeout_ms,
        )

    async def fetch(self) -> list[DeadLetter]:
        """Every entry on the dead-letter topic, by partition and offset. Raises: MessagingUnavailable."""
        return [dead_letter(record) for record in await self._records()]

    async def replay(self, positions: Collection[DeadLetterPosition] | None) -> Sequence[DeadLetter]:
        """Put the entries at `positions` (all of them when None) back on the payments topic, in order.

        Returns the entries replayed; positions with no entry are skipped (the caller reports them).

        Raises:
            MessagingUnavailable: the broker could not be read or did not take the records.
        """
        chosen = [
            record
            for record in await self._records()
            if positions is None or DeadLetterPosition(record.partition, record.offset) in positions
        ]
        outgoing = [
            OutgoingRecord(
                self._settings.payment_topic,
                key=record.key,
                value=record.value,
                headers=tuple((name, value) for name, value in record.headers if name not in DLQ_HEADERS),
            )
            for record in chosen
        ]
        await self._publisher.send_records(outgoing)
        return [dead_letter(record) for record in chosen]
