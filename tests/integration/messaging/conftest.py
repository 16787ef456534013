"""Fixtures for the messaging tests: topics of the test's own, a restartable broker (the store: `engine`, one level up)."""

import asyncio
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from payment_service.settings import KafkaSettings
from tests.conftest import REPO_ROOT, free_tcp_ports, run_kafka_script
from tests.support.db_service import DbServiceHandle
from tests.support.events import fresh_kafka_settings


@pytest.fixture
async def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    return await fresh_kafka_settings(kafka_bootstrap)


@dataclass
class RestartableKafka:
    """A broker of its own, for tests that take Kafka away and bring it back on the same port."""

    bootstrap: str
    env: dict[str, str]

    async def stop(self) -> None:
        await asyncio.to_thread(self._run, "stop")

    async def start(self) -> None:
        await asyncio.to_thread(self._run, "start")

    def _run(self, command: str) -> None:
        result = run_kafka_script(command, self.env)
        if result.returncode != 0:
            pytest.fail(f"scripts/kafka/kafka.sh {command} failed:\n{result.stdout}{result.stderr}", pytrace=False)


@pytest.fixture(scope="module")
def restartable_kafka() -> Iterator[RestartableKafka]:
    port, controller_port = free_tcp_ports(2)
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="kafka-restartable-", dir=REPO_ROOT / "var")
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_DATA_DIR": data_dir,
    }
    broker = RestartableKafka(bootstrap=f"127.0.0.1:{port}", env=env)
    try:
        broker._run("start")
        yield broker
    finally:
        run_kafka_script("stop", env)
        shutil.rmtree(data_dir, ignore_errors=True)


# `db_service` (the reference db-service, one per module) comes from tests/integration/conftest.py.


@dataclasses.dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str


@pytest.fixture
def orders(db_service: DbServiceHandle) -> list[Order]:
    """Three fresh unpaid orders of one fresh customer."""
    customer = str(db_service.create_customer()["id"])
    product = str(db_service.create_product("Blue mug", "19.99")["id"])
    return [Order(str(db_service.create_order(customer, [(product, 3)])["id"]), customer) for _ in range(3)]
