"""The aiokafka wrapper against the session's real broker: produce, consume, commit, resume."""

import asyncio
import uuid

from payment_service.messaging.client import (
    KafkaConsumerClient,
    KafkaProducerClient,
    OutgoingRecord,
    Record,
    TopicPartition,
    ensure_topics,
    next_offsets,
)

DEADLINE_S = 30


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def consume_until(consumer: KafkaConsumerClient, count: int) -> list[Record]:
    """Poll until `count` records arrived (the group join happens in the background)."""
    records: list[Record] = []
    async with asyncio.timeout(DEADLINE_S):
        while len(records) < count:
            records += await consumer.getmany(timeout_ms=200)
    return records


class TestKafkaRoundTrip:
    async def test_consumer_receives_key_value_and_headers_as_sent(self, kafka_bootstrap: str) -> None:
        topic = unique("round-trip")
        await ensure_topics(kafka_bootstrap, {topic: 1})
        headers = (("ce_id", b"evt-1"), ("content-type", b"application/json"), ("ce_id", b"dup"))

        async with KafkaProducerClient(kafka_bootstrap) as producer:
            delivery = await producer.send(topic, key=b"order-1", value=b'{"n": 1}', headers=headers)
        async with KafkaConsumerClient(kafka_bootstrap, topics=[topic], group_id=unique("g")) as consumer:
            (record,) = await consume_until(consumer, 1)

        assert (delivery.topic, delivery.partition, delivery.offset) == (topic, 0, 0)
        assert record == Record(
            topic=topic,
            partition=0,
            offset=0,
            key=b"order-1",
            value=b'{"n": 1}',
            headers=headers,
            timestamp_ms=delivery.timestamp_ms,
        )

    async def test_records_sent_together_keep_their_order_within_a_partition(self, kafka_bootstrap: str) -> None:
        topic = unique("ordered")
        await ensure_topics(kafka_bootstrap, {topic: 3})
        outgoing = [OutgoingRecord(topic, key=b"order-7", value=str(n).encode()) for n in range(50)]

        async with KafkaProducerClient(kafka_bootstrap) as producer:
            deliveries = await producer.send_many(outgoing)

        assert len({d.partition for d in deliveries}) == 1
        assert [d.offset for d in deliveries] == list(range(50))

    async def test_new_member_of_a_group_resumes_after_the_committed_offset(self, kafka_bootstrap: str) -> None:
        topic, group = unique("resume"), unique("group")
        await ensure_topics(kafka_bootstrap, {topic: 1})
        async with KafkaProducerClient(kafka_bootstrap) as producer:
            await producer.send_many([OutgoingRecord(topic, key=b"k", value=b"v%d" % n) for n in range(5)])

        async with KafkaConsumerClient(kafka_bootstrap, topics=[topic], group_id=group) as first:
            records = await consume_until(first, 5)
            processed = records[:3]
            await first.commit(next_offsets(processed))
            assert first.assignment() == {TopicPartition(topic, 0)}

        async with KafkaConsumerClient(kafka_bootstrap, topics=[topic], group_id=group) as second:
            resumed = await consume_until(second, 2)

        assert next_offsets(processed) == {TopicPartition(topic, 0): 3}
        assert [(r.offset, r.value) for r in resumed] == [(3, b"v3"), (4, b"v4")]

    async def test_ensuring_an_existing_topic_again_is_harmless(self, kafka_bootstrap: str) -> None:
        topic = unique("twice")
        await ensure_topics(kafka_bootstrap, {topic: 2})
        await ensure_topics(kafka_bootstrap, {topic: 2})

        async with KafkaProducerClient(kafka_bootstrap) as producer:
            delivery = await producer.send(topic, key=None, value=b"x")

        assert delivery.topic == topic


class TestKafkaConsumerClientRebalance:
    async def test_callbacks_hear_of_partitions_assigned_and_revoked(self, kafka_bootstrap: str) -> None:
        topic, group = unique("rebalance"), unique("group")
        await ensure_topics(kafka_bootstrap, {topic: 2})
        assigned: list[frozenset[TopicPartition]] = []
        revoked: list[frozenset[TopicPartition]] = []
        both = frozenset({TopicPartition(topic, 0), TopicPartition(topic, 1)})

        async def on_assigned(partitions: frozenset[TopicPartition]) -> None:
            assigned.append(partitions)

        async def on_revoked(partitions: frozenset[TopicPartition]) -> None:
            revoked.append(partitions)

        first = KafkaConsumerClient(kafka_bootstrap, topics=[topic], group_id=group, heartbeat_interval_ms=200)
        first.set_rebalance_callbacks(on_assigned=on_assigned, on_revoked=on_revoked)
        async with first:
            async with asyncio.timeout(DEADLINE_S):
                while not assigned:
                    await first.getmany(timeout_ms=100)
            async with KafkaConsumerClient(kafka_bootstrap, topics=[topic], group_id=group) as second:
                async with asyncio.timeout(DEADLINE_S):
                    while len(assigned) < 2:
                        await asyncio.gather(first.getmany(timeout_ms=100), second.getmany(timeout_ms=100))

        assert assigned[0] == both
        assert revoked[-1] == both
        assert len(assigned[1]) == 1
        assert assigned[1] < both
