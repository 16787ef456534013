"""The worker process: outbox -> relay -> Kafka -> consumer -> db-service, and its clean shutdown."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from payment_service.domain.payments import PaymentStatus
from payment_service.settings import DbServiceSettings, KafkaSettings, RelaySettings, Settings, StoreSettings
from payment_service.store.database import create_engine
from payment_service.store.outbox import add_events, fetch_backlog
from payment_service.store.schema import upgrade_schema
from payment_service.worker.main import serve_worker
from tests.integration.messaging.conftest import Order
from tests.support.databases import database_url
from tests.support.db_service import DbServiceHandle
from tests.support.events import committed_offsets, make_payment_record, payment_event, wait_until

DEADLINE_S = 30


def worker_settings(tmp_path: Path, kafka: KafkaSettings, db_service: DbServiceHandle) -> Settings:
    return Settings(
        kafka=kafka,
        db_service=DbServiceSettings(base_url=db_service.base_url, max_retries=1, backoff_ms=10),
        store=StoreSettings(database_url=database_url(tmp_path / "store.sqlite3")),
        relay=RelaySettings(sweep_interval_s=0.1, max_backoff_s=0.5),
    )


class TestWorker:
    async def test_outbox_rows_reach_the_db_service_and_a_stop_commits_and_drains(
        self, tmp_path: Path, kafka_settings: KafkaSettings, db_service: DbServiceHandle, orders: list[Order]
    ) -> None:
        settings = worker_settings(tmp_path, kafka_settings, db_service)
        payments = [make_payment_record(order_id=o.order_id, customer_id=o.customer_id) for o in orders]
        engine = create_engine(settings.store)
        await upgrade_schema(engine)
        async with engine.begin() as conn:
            await add_events(conn, [payment_event(p) for p in payments])
        stop = asyncio.Event()

        task = asyncio.create_task(serve_worker(settings, stop=stop))
        try:

            async def all_recorded() -> bool:
                found = [await asyncio.to_thread(db_service.get_payment, p.id) for p in payments]
                return all(found)

            await wait_until(all_recorded, timeout_s=DEADLINE_S)
        finally:
            stop.set()
            async with asyncio.timeout(DEADLINE_S):
                await task

        async with engine.connect() as conn:
            backlog, _ = await fetch_backlog(conn)
        await engine.dispose()
        committed = await committed_offsets(kafka_settings.bootstrap_servers, kafka_settings.consumer_group)
        assert backlog == 0
        assert sum(committed.values()) == 3
        for order in orders:
            stored = await asyncio.to_thread(db_service.get_order, order.order_id)
            assert stored is not None
            assert stored["payment_status"] == PaymentStatus.APPROVED.value

    async def test_sigterm_stops_the_worker_command_cleanly(
        self, tmp_path: Path, kafka_settings: KafkaSettings, db_service: DbServiceHandle
    ) -> None:
        env = {
            **os.environ,
            "PAYMENTS_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "PAYMENTS_KAFKA__PAYMENT_TOPIC": kafka_settings.payment_topic,
            "PAYMENTS_KAFKA__NOTIFICATION_TOPIC": kafka_settings.notification_topic,
            "PAYMENTS_KAFKA__DLQ_TOPIC": kafka_settings.dlq_topic,
            "PAYMENTS_KAFKA__CONSUMER_GROUP": kafka_settings.consumer_group,
            "PAYMENTS_DB_SERVICE__BASE_URL": db_service.base_url,
            "PAYMENTS_STORE__DATABASE_URL": database_url(tmp_path / "store.sqlite3"),
        }
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "payment-service"),
            "worker",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert process.stdout is not None
        output: list[str] = []
        try:
            async with asyncio.timeout(DEADLINE_S):
                while "consumer.partitions_assigned" not in (line := (await process.stdout.readline()).decode()):
                    assert line, f"worker exited early:\n{''.join(output)}"
                    output.append(line)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(DEADLINE_S):
                rest = (await process.stdout.read()).decode()
                code = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

        assert code == 0, rest
        assert "consumer.stopped" in rest
        assert "worker.stopped" in rest
