"""The production topology as real processes: two APIs and two workers on one PostgreSQL and one broker.

Every order is paid twice at once, once through each API (different Idempotency-Keys: two customers'
tabs racing), while both workers consume; halfway through one worker is killed with SIGKILL. Then:
one charge per order at the gateway (the simulator's ledger), every approved payment recorded at the
reference db-service (the surviving worker takes the dead one's partitions over), and every outbox
event on the payments topic (nothing lost; at least once, so duplicates are allowed).

The APIs and workers are `payment-service` processes started here with settings in their environment;
the simulator and the reference db-service are the suite's real servers. Runs in `make test-postgres`;
skipped without a PostgreSQL URL (SQLite serves one host, not replicas).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from payment_service.settings import KafkaSettings, Settings
from tests.conftest import free_tcp_ports
from tests.integration.conftest import Shop, card_body, store_rows
from tests.support.databases import on_postgres
from tests.support.db_service import DbServiceHandle
from tests.support.events import fresh_kafka_settings, header, read_topic, wait_until
from tests.support.simulator import SimulatorHandle

pytestmark = pytest.mark.skipif(not on_postgres(), reason="needs PAYMENTS_TEST_POSTGRES_URL (make test-postgres)")

ORDERS = 24
DEADLINE_S = 90
COMMAND = str(Path(sys.executable).parent / "payment-service")


def section_env(name: str, section: BaseModel) -> dict[str, str]:
    """`PAYMENTS_<SECTION>__<FIELD>` variables for every field of a settings section."""
    env = {}
    for field, dumped in section.model_dump(mode="json").items():
        value = getattr(section, field)
        if isinstance(value, SecretStr):
            dumped = value.get_secret_value()
        elif isinstance(dumped, list | dict):  # collections are JSON in the environment
            dumped = json.dumps(dumped)
        env[f"PAYMENTS_{name.upper()}__{field.upper()}"] = "null" if dumped is None else str(dumped)
    return env


def replica_env(settings: Settings, kafka: KafkaSettings, metrics_port: int) -> dict[str, str]:
    return {
        **os.environ,
        **section_env("gateway", settings.gateway),
        **section_env("db_service", settings.db_service),
        **section_env("kafka", kafka),
        **section_env("store", settings.store),
        "PAYMENTS_WORKER__METRICS_PORT": str(metrics_port),
        "PAYMENTS_RELAY__SWEEP_INTERVAL_S": "0.5",
        "PAYMENTS_LOG__LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }


class Replica:
    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as out:
            # cwd: the test's directory, so no developer's `.env` is read.
            self.process = subprocess.Popen(  # noqa: S603 - our own command, fixed arguments
                [COMMAND, *args], env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
            )

    def logged(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def replicas(
    settings: Settings, kafka: KafkaSettings, workdir: Path
) -> Iterator[tuple[list[tuple[str, Replica]], list[Replica]]]:
    """Two APIs (with their base URLs) and two workers, stopped at the end whatever happened."""
    api_ports = free_tcp_ports(2)
    metrics_ports = free_tcp_ports(4)
    with ExitStack() as stack:
        started = []
        for n, port in enumerate(api_ports):
            env = replica_env(settings, kafka, metrics_ports[n])
            started.append(Replica(f"api-{n}", ["api", "--host", "127.0.0.1", "--port", str(port)], env, workdir))
        workers = [
            Replica(f"worker-{n}", ["worker"], replica_env(settings, kafka, metrics_ports[2 + n]), workdir)
            for n in range(2)
        ]
        for replica in [*started, *workers]:
            stack.callback(replica.stop)
        yield [(f"http://127.0.0.1:{port}", api) for port, api in zip(api_ports, started, strict=True)], workers


async def wait_healthy(url: str, replica: Replica) -> None:
    async def healthy() -> bool:
        assert replica.process.poll() is None, replica.log.read_text(errors="replace")[-3000:]
        try:
            async with httpx.AsyncClient(timeout=1) as http:
                return (await http.get(f"{url}/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(healthy, timeout_s=DEADLINE_S, interval_s=0.1)


async def test_two_apis_and_two_workers_charge_once_record_everything_and_survive_a_killed_worker(
    tmp_path: Path,
    service_settings: Settings,
    shop: Shop,
    simulator: SimulatorHandle,
    db_service: DbServiceHandle,
    kafka_bootstrap: str,
) -> None:
    kafka = await fresh_kafka_settings(kafka_bootstrap, partitions=3)
    customer = shop.customer()
    orders = [str(shop.order(customer)["id"]) for _ in range(ORDERS)]

    with replicas(service_settings, kafka, tmp_path) as (api_replicas, workers):
        for url, api in api_replicas:
            await wait_healthy(url, api)
        for worker in workers:
            await wait_until(_assigned(worker), timeout_s=DEADLINE_S, interval_s=0.1)
        apis = [url for url, _ in api_replicas]

        async with httpx.AsyncClient(timeout=30) as http:

            async def pay(order_id: str, api: int) -> httpx.Response:
                headers = shop.auth(customer, key=f"{order_id}-{api}")
                return await http.post(f"{apis[api]}/payments/pay", json=card_body(order_id), headers=headers)

            async def race(order_id: str) -> list[httpx.Response]:
                return list(await asyncio.gather(pay(order_id, 0), pay(order_id, 1)))

            half = ORDERS // 2
            first = await asyncio.gather(*(race(order_id) for order_id in orders[:half]))
            workers[0].process.kill()  # SIGKILL: no shutdown, no commit, no leaving the group
            workers[0].process.wait()
            second = await asyncio.gather(*(race(order_id) for order_id in orders[half:]))

        answers: list[Any] = [[r.status_code for r in pair] for pair in [*first, *second]]
        assert all(sorted(pair) == [201, 409] for pair in answers), answers
        approved = {
            order_id: next(r.json()["id"] for r in pair if r.status_code == 201)
            for order_id, pair in zip(orders, [*first, *second], strict=True)
        }

        # One charge per order, although every order was paid on both APIs at once.
        for order_id in orders:
            assert len(simulator.transactions(invoice_number=order_id)) == 1, order_id

        # Every payment reaches the db-service through the surviving worker.
        async def all_recorded() -> bool:
            return all(
                (record := db_service.get_payment(payment_id)) is not None and record["status"] == "approved"
                for payment_id in approved.values()
            )

        await wait_until(all_recorded, timeout_s=DEADLINE_S, interval_s=0.2)

        # Every outbox event was published (marked) and is on its topic.
        async def outbox_drained() -> bool:
            return store_rows(service_settings, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == [(0,)]

        await wait_until(outbox_drained, timeout_s=DEADLINE_S, interval_s=0.2)

    events = store_rows(service_settings, "SELECT event_id FROM outbox WHERE stream = 'payments'")
    assert len(events) >= ORDERS
    records = await read_topic(kafka_bootstrap, kafka.payment_topic, at_least=len(events))
    on_topic = {header(record, "ce_id") for record in records}
    assert {event_id for (event_id,) in events} <= on_topic


def _assigned(worker: Replica) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        assert worker.process.poll() is None, worker.log.read_text(errors="replace")[-3000:]
        return worker.logged("consumer.partitions_assigned")

    return check
