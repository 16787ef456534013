"""How the aiokafka wrapper reports failures: our error classes, never aiokafka's."""

import uuid

import pytest

from payment_service.messaging.client import (
    KafkaConsumerClient,
    KafkaProducerClient,
    MessagingUnavailable,
    OffsetCommitRejected,
    TopicNotFound,
    TopicPartition,
    ensure_topics,
)
from tests.conftest import free_tcp_ports


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def unused_bootstrap() -> str:
    (port,) = free_tcp_ports(1)
    return f"127.0.0.1:{port}"


class TestKafkaProducerClient:
    async def test_start_without_a_reachable_broker_raises_messaging_unavailable(self, unused_bootstrap: str) -> None:
        producer = KafkaProducerClient(unused_bootstrap)

        with pytest.raises(MessagingUnavailable) as caught:
            await producer.start()

        assert caught.value.retriable

    async def test_sending_to_a_topic_that_does_not_exist_raises_topic_not_found(self, kafka_bootstrap: str) -> None:
        async with KafkaProducerClient(kafka_bootstrap, request_timeout_ms=1_000) as producer:
            with pytest.raises(TopicNotFound) as caught:
                await producer.send(unique("missing"), key=b"k", value=b"v")

        assert not caught.value.retriable

    async def test_sending_before_start_is_a_programming_error(self) -> None:
        with pytest.raises(RuntimeError, match="not started"):
            await KafkaProducerClient("127.0.0.1:1").send("t", key=None, value=b"v")


class TestKafkaConsumerClient:
    async def test_start_without_a_reachable_broker_raises_messaging_unavailable(self, unused_bootstrap: str) -> None:
        consumer = KafkaConsumerClient(unused_bootstrap, topics=["t"], group_id="g")

        with pytest.raises(MessagingUnavailable):
            await consumer.start()

    async def test_committing_a_partition_not_assigned_raises_offset_commit_rejected(
        self, kafka_bootstrap: str
    ) -> None:
        topic = unique("owned")
        await ensure_topics(kafka_bootstrap, {topic: 1})

        async with KafkaConsumerClient(kafka_bootstrap, topics=[topic], group_id=unique("g")) as consumer:
            with pytest.raises(OffsetCommitRejected):
                await consumer.commit({TopicPartition(unique("elsewhere"), 0): 1})


class TestEnsureTopics:
    async def test_without_a_reachable_broker_raises_messaging_unavailable(self, unused_bootstrap: str) -> None:
        with pytest.raises(MessagingUnavailable):
            await ensure_topics(unused_bootstrap, {"t": 1})
