"""Dead letters: payment events the consumer could not record, as operators see and replay them."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeadLetterPosition:
    partition: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> "DeadLetterPosition":
        """`P:O`, as `dlq replay --offset` takes it. Raises: ValueError."""
        partition, sep, offset = text.partition(":")
        if not sep or not partition.isdigit() or not offset.isdigit():
            raise ValueError("a dead-letter position is PARTITION:OFFSET, e.g. 0:12")
        return cls(int(partition), int(offset))

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    position: DeadLetterPosition  # on the dead-letter topic
    key: str | None  # the order id
    event_type: str | None  # `ce_type`
    event_id: str | None  # `ce_id`
    reason: str | None  # `dlq-reason`: undecodable, invalid_schema, rejected, …
    error: str | None
    original_partition: int | None
    original_offset: int | None
    timestamp_ms: int
