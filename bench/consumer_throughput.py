"""Messaging benchmarks: consumer throughput into the reference db-service, and outbox publish lag.

    .venv/bin/python bench/consumer_throughput.py consumer [--events 20000] [--partitions 6] [--orders 300]
        [--max-in-flight 64] [--max-in-flight-total 128] [--no-db-service]
    .venv/bin/python bench/consumer_throughput.py outbox-lag [--payments 500]

`consumer`: produces N payment events (keyed by order id, over `--orders` orders) to a fresh topic
first, then starts the payment consumer (EventConsumer -> PaymentRecorder -> DbServiceClient) against
a reference db-service run as its own process (`reference-db-service serve`, fresh SQLite file). It
reports the time until every event was handled (its row written), then until the consumer stopped
with every offset committed, and the CPU time the consumer, the db-service and the broker spent
meanwhile. `--no-db-service` swaps the handler for one that only decodes and validates the payment:
the consumer's own ceiling, with no db-service at all. `outbox-lag`: commits outbox rows one payment
at a time (a payment event and an order.paid, as the pay flow does), wakes the in-process relay
after each commit as the API does, and reports commit -> broker-ack latency percentiles.

A broker: PAYMENTS_BENCH_KAFKA_BOOTSTRAP=host:port, or one is started with scripts/kafka/kafka.sh on
free ports (fresh data dir under var/) and stopped at the end (its CPU is then reported too).
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx

from payment_service.db_service.client import DbServiceClient, build_http_client
from payment_service.domain.events import EventStream, OutboundEvent, PaymentRecorded
from payment_service.domain.payments import PaymentStatus
from payment_service.messaging.client import ensure_topics
from payment_service.messaging.codec import CloudEvent, decode_payment
from payment_service.messaging.consumer import EventConsumer, create_consumer_client
from payment_service.messaging.publisher import EventPublisher, create_producer, topics_of
from payment_service.services.outbox_relay import OutboxRelay
from payment_service.services.recording import PaymentRecorder
from payment_service.settings import DbServiceSettings, KafkaSettings, RelaySettings, StoreSettings
from payment_service.store.database import Database, create_engine
from payment_service.store.outbox import add_events, outbox
from payment_service.store.schema import upgrade_schema
from processes import cpu_seconds, free_port, free_ports, started, venv_command, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def kafka_broker() -> Iterator[tuple[str, Path | None]]:
    """The broker's bootstrap address, and its data dir (holding kafka.pid) when this script started it."""
    outside = os.environ.get("PAYMENTS_BENCH_KAFKA_BOOTSTRAP")
    if outside:
        yield outside, None
        return
    port, cport = free_ports(2)
    (ROOT / "var").mkdir(exist_ok=True)
    data = tempfile.mkdtemp(prefix="kafka-bench-", dir=ROOT / "var")
    env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(cport), "KAFKA_DATA_DIR": data}
    script = str(ROOT / "scripts" / "kafka" / "kafka.sh")
    subprocess.run([script, "start"], env=env, check=True, capture_output=True)
    try:
        yield f"127.0.0.1:{port}", Path(data)
    finally:
        subprocess.run([script, "stop"], env=env, check=False, capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def reference_db_service() -> Iterator[tuple[str, int]]:
    """A `reference-db-service serve` process on a fresh SQLite file: its base URL and pid."""
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="bench-db-")
    env = {**os.environ, "REFERENCE_DB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/db.sqlite3"}
    command = [venv_command("reference-db-service"), "serve", "--port", str(port)]
    try:
        with started(command, env=env) as process:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_healthy(base_url, process)
            yield base_url, process.pid
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_settings(bootstrap: str, partitions: int) -> KafkaSettings:
    suffix = uuid.uuid4().hex[:8]
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        payment_topic=f"bench-payments-{suffix}",
        notification_topic=f"bench-notifications-{suffix}",
        dlq_topic=f"bench-payments-{suffix}.dlq",
        consumer_group=f"bench-{suffix}",
        topic_partitions=partitions,
    )


def payment_event(order_id: str, customer_id: str) -> OutboundEvent:
    now = datetime.now(UTC)
    payment = PaymentRecorded(
        id=f"pay_{uuid.uuid4().hex}",
        order_id=order_id,
        customer_id=customer_id,
        status=PaymentStatus.DECLINED,
        amount="59.97",
        currency="USD",
        created_at=now,
        updated_at=now,
        version=1,
    )
    return OutboundEvent(
        event_id=str(uuid.uuid4()),
        stream=EventStream.PAYMENTS,
        event_type="payment.declined",
        subject=f"payments/{payment.id}",
        key=order_id,
        data=payment.model_dump_json().encode(),
        occurred_at=now,
    )


def make_orders(base_url: str, count: int) -> list[tuple[str, str]]:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        customer = http.post(
            "/customers",
            json={
                "email": "bench@example.com",
                "first_name": "Bench",
                "last_name": "Mark",
                "address": {
                    "line1": "1 Main St",
                    "city": "Springfield",
                    "state": "IL",
                    "zip": "62701",
                    "country": "US",
                },
            },
        ).json()
        product = http.post("/products", json={"name": "Mug", "price": "19.99"}).json()
        orders = []
        for _ in range(count):
            order = http.post(
                "/orders", json={"customer_id": customer["id"], "items": [{"product_id": product["id"], "quantity": 3}]}
            ).json()
            orders.append((str(order["id"]), str(customer["id"])))
        return orders


def broker_pid(data_dir: Path | None) -> int | None:
    """The broker's pid, when this script started it (kafka.sh keeps it in the data dir)."""
    if data_dir is None or not (data_dir / "kafka.pid").exists():
        return None
    return int((data_dir / "kafka.pid").read_text().strip())


async def run_consumer_bench(
    bootstrap: str,
    broker_data_dir: Path | None,
    db_service: tuple[str, int] | None,
    *,
    events: int,
    partitions: int,
    orders: int,
    max_in_flight: int,
    max_in_flight_total: int,
) -> None:
    """With `db_service` (base URL, pid) None the handler only decodes and validates: the consumer's own ceiling."""
    settings = bench_settings(bootstrap, partitions)
    await ensure_topics(bootstrap, topics_of(settings))
    base_url = db_service[0] if db_service else None
    order_ids = make_orders(base_url, orders) if base_url else [(str(n), "42") for n in range(orders)]
    publisher = EventPublisher(create_producer(settings), settings)
    await publisher.start(require_broker=True)
    started = time.perf_counter()
    batch = [payment_event(*order_ids[n % len(order_ids)]) for n in range(events)]
    for start in range(0, events, 2000):
        await publisher.publish(batch[start : start + 2000])
    print(
        f"produced {events} events for {len(order_ids)} orders to {partitions} partitions in {time.perf_counter() - started:.2f}s"
    )

    db_settings = DbServiceSettings(base_url=base_url or "http://127.0.0.1:9", max_connections=max_in_flight_total)
    done = 0
    first_at = 0.0
    last_at = 0.0
    finished = asyncio.Event()
    processes = {"consumer (this process)": os.getpid()}
    if db_service:
        processes["db-service"] = db_service[1]
    if (pid := broker_pid(broker_data_dir)) is not None:
        processes["kafka broker"] = pid
    async with build_http_client(db_settings) as http:
        recorder = PaymentRecorder(DbServiceClient(http, db_settings))

        async def handle(event: CloudEvent) -> None:
            nonlocal done, first_at, last_at
            if base_url:
                await recorder.record(event)
            else:
                decode_payment(event)
            done += 1
            now = time.perf_counter()
            first_at = first_at or now
            last_at = now
            if done >= events:
                finished.set()

        consumer = EventConsumer(
            create_consumer_client(settings),
            handle,
            publisher,
            max_in_flight=max_in_flight,
            max_in_flight_total=max_in_flight_total,
        )
        cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        t0 = time.perf_counter()
        task = asyncio.create_task(consumer.run())
        await finished.wait()
        handled_s = time.perf_counter() - t0
        consumer.stop()
        await task  # commits the finished records on the way out
        committed_s = time.perf_counter() - t0
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in processes.items()}
    await publisher.stop()
    steady = last_at - first_at
    target = "into the db-service" if base_url else "decoded and validated only (no db-service)"
    print(f"max in flight: {max_in_flight} per partition, {max_in_flight_total} in all")
    print(f"handled {done} events {target} in {handled_s:.2f}s (incl. group join): {done / handled_s:,.0f} events/s")
    print(f"  first to last record: {steady:.2f}s: {done / steady:,.0f} events/s")
    print(f"  stopped with every offset committed after {committed_s:.2f}s")
    print(
        "  CPU seconds from start to stop: "
        + ", ".join(f"{name} {seconds:.2f} ({seconds * 1000 / done:.2f} ms/event)" for name, seconds in cpu.items())
    )


async def run_outbox_lag_bench(bootstrap: str, *, payments: int) -> None:
    settings = bench_settings(bootstrap, 3)
    tmp = tempfile.mkdtemp(prefix="bench-store-")
    engine = create_engine(StoreSettings(database_url=f"sqlite+aiosqlite:///{tmp}/store.sqlite3"))
    await upgrade_schema(engine)
    database = Database(engine)
    publisher = EventPublisher(create_producer(settings), settings)
    await publisher.start(require_broker=True)
    wakeup = asyncio.Event()
    relay = OutboxRelay(database, publisher, RelaySettings(), wakeup=wakeup)
    task = asyncio.create_task(relay.run())
    committed_at: dict[str, float] = {}
    for n in range(payments):
        event = payment_event(f"{n}", "42")
        paid = OutboundEvent(
            event_id=str(uuid.uuid4()),
            stream=EventStream.NOTIFICATIONS,
            event_type="order.paid",
            subject=f"orders/{n}",
            key=f"{n}",
            data=b"{}",
            occurred_at=event.occurred_at,
        )
        async with database.transaction() as conn:
            await add_events(conn, [event, paid])
        committed_at[event.event_id] = time.time()
        wakeup.set()
        await asyncio.sleep(0.005)  # pacing: ~200 payments/s arriving, not a synchronisation
    from sqlalchemy import func, select

    while True:
        async with database.reading() as conn:
            left = (await conn.execute(select(func.count()).where(outbox.c.published_at.is_(None)))).scalar_one()
        if not left:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait({task})
    async with database.reading() as conn:
        rows = (await conn.execute(select(outbox.c.event_id, outbox.c.published_at))).all()
    lags_ms = sorted(
        (row.published_at.timestamp() - committed_at[row.event_id]) * 1000
        for row in rows
        if row.event_id in committed_at
    )
    await publisher.stop()
    await engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    q = statistics.quantiles(lags_ms, n=100)
    print(
        f"outbox commit -> broker ack (marked), {len(lags_ms)} payments: p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, "
        f"p99 {q[98]:.1f} ms, max {lags_ms[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["consumer", "outbox-lag"])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--payments", type=int, default=500)
    defaults = KafkaSettings()
    parser.add_argument("--max-in-flight", type=int, default=defaults.consumer_max_in_flight, help="per partition")
    parser.add_argument("--max-in-flight-total", type=int, default=defaults.consumer_max_in_flight_total)
    parser.add_argument(
        "--no-db-service", action="store_true", help="handler decodes and validates only: the consumer's own ceiling"
    )
    args = parser.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    consumer_options = {
        "events": args.events,
        "partitions": args.partitions,
        "orders": args.orders,
        "max_in_flight": args.max_in_flight,
        "max_in_flight_total": args.max_in_flight_total,
    }
    with kafka_broker() as (bootstrap, broker_data_dir):
        if args.mode == "consumer" and args.no_db_service:
            asyncio.run(run_consumer_bench(bootstrap, broker_data_dir, None, **consumer_options))
        elif args.mode == "consumer":
            with reference_db_service() as db_service:
                asyncio.run(run_consumer_bench(bootstrap, broker_data_dir, db_service, **consumer_options))
        else:
            asyncio.run(run_outbox_lag_bench(bootstrap, payments=args.payments))


if __name__ == "__main__":
    main()
