"""`run_worker(settings)`: the worker process: outbox relay sweep and payment consumer, side by side.

Both loops run in one `asyncio.TaskGroup` over the resources `open_resources` opens (store, db-service
client, Kafka publisher). SIGTERM or SIGINT starts a clean shutdown: the consumer stops fetching,
finishes the record each partition has in hand, commits, and leaves the group; then the relay is
cancelled (between batches, or mid-publish: an unmarked row is published again later) and the
resources close in reverse, the producer flushing what is in flight. A broker that is down at start
is waited for with backoff. The reconciler, the refund reconciler, the webhook sweep (notifications the
API stored but did not finish applying) and the order update sweep (approvals whose order was not told)
run beside them and are cancelled with the relay.
"""

import asyncio
import contextlib
import signal

import prometheus_client
import structlog

from payment_service.logging import configure_logging
from payment_service.messaging.client import MessagingError
from payment_service.messaging.consumer import EventConsumer, RetryPolicy, create_consumer_client
from payment_service.resources import open_resources
from payment_service.services.housekeeping import Housekeeper
from payment_service.services.order_updates import OrderUpdateSweep
from payment_service.services.outbox_relay import OutboxRelay
from payment_service.services.reconciliation import Reconciler
from payment_service.services.recording import PaymentRecorder
from payment_service.services.refund_reconciliation import RefundReconciler
from payment_service.services.refunds import RefundService
from payment_service.services.webhooks import WebhookService
from payment_service.settings import Settings, WorkerSettings
from payment_service.tracing import configure_tracing

log = structlog.get_logger(__name__)


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly (blocking)."""
    configure_logging(settings.log)
    configure_tracing("payment-service-worker")
    serve_metrics(settings.worker)
    asyncio.run(serve_worker(settings, handle_signals=True))


def serve_metrics(settings: WorkerSettings) -> None:
    """Expose the default Prometheus registry over HTTP from a daemon thread, when a port is configured.

    A port already taken is logged, not fatal: recording payments matters more than being scraped.
    """
    if settings.metrics_port is None:
        return
    try:
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.metrics_host)
    except OSError as exc:
        log.error("worker.metrics_unavailable", port=settings.metrics_port, error=str(exc))
        return
    log.info("worker.metrics_serving", host=settings.metrics_host, port=settings.metrics_port)


async def serve_worker(settings: Settings, *, stop: asyncio.Event | None = None, handle_signals: bool = False) -> None:
    """Run the worker's loops until `stop` is set (or a signal arrives, with `handle_signals`)."""
    stop = stop or asyncio.Event()
    if handle_signals:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    async with open_resources(settings) as resources:
        recorder = PaymentRecorder(resources.db_service)
        consumer = EventConsumer(
            create_consumer_client(settings.kafka),
            recorder.record,
            resources.publisher,
            retry=RetryPolicy(max_backoff_s=settings.relay.max_backoff_s),
            max_in_flight=settings.kafka.consumer_max_in_flight,
            max_in_flight_total=settings.kafka.consumer_max_in_flight_total,
        )
        relay = OutboxRelay(resources.database, resources.publisher, settings.relay, name="worker-relay")
        refunds = RefundService(
            database=resources.database,
            db_service=resources.db_service,
            gateway=resources.gateway,
            idempotency_ttl_s=settings.api.idempotency_ttl_s,
            outbox_written=relay.wake,
        )
        reconciler = Reconciler(
            database=resources.database,
            gateway=resources.gateway,
            db_service=resources.db_service,
            settings=settings.reconciler,
            refunds=refunds,
        )
        refund_reconciler = RefundReconciler(
            database=resources.database,
            gateway=resources.gateway,
            db_service=resources.db_service,
            refunds=refunds,
            settings=settings.reconciler,
        )
        notifications = WebhookService(
            database=resources.database,
            gateway=resources.gateway,
            reconciler=reconciler,
            refunds=refunds,
            settings=settings.webhooks,
            signature_key=settings.gateway.signature_key.get_secret_value(),
        )
        order_updates = OrderUpdateSweep(
            database=resources.database,
            db_service=resources.db_service,
            refunds=refunds,
            settings=settings.reconciler,
        )
        sweeper = Housekeeper(
            resources.database,
            interval_s=settings.worker.idempotency_sweep_interval_s,
            outbox_retention_s=settings.relay.retention_s,
        )
        log.info("worker.started", topic=settings.kafka.payment_topic, group=settings.kafka.consumer_group)
        async with asyncio.TaskGroup() as group:
            relay_task = group.create_task(relay.run(), name="outbox-relay")
            consumer_task = group.create_task(_consume(consumer, stop, settings.relay.max_backoff_s), name="consumer")
            reconciler_task = group.create_task(reconciler.run(), name="reconciler")
            refund_reconciler_task = group.create_task(refund_reconciler.run(), name="refund-reconciler")
            sweeper_task = group.create_task(sweeper.run(), name="housekeeping")
            order_update_task = group.create_task(order_updates.run(), name="order-update-sweep")
            webhook_task = group.create_task(notifications.run(), name="webhook-processor")
            await stop.wait()
            log.info("worker.stopping")
            consumer.stop()
            await consumer_task
            # Between look-ups or mid-write: an unfinished change rolls back and is redone next start.
            reconciler_task.cancel()
            refund_reconciler_task.cancel()
            sweeper_task.cancel()
            order_update_task.cancel()
            webhook_task.cancel()
            relay_task.cancel()
    log.info("worker.stopped")


async def _consume(consumer: EventConsumer, stop: asyncio.Event, max_backoff_s: float) -> None:
    """Run the consumer; while the broker cannot be reached at start, retry with backoff until stopped."""
    delay_s = 0.5
    while not stop.is_set():
        try:
            await consumer.run()
        except MessagingError as exc:
            log.warning("consumer.start_failed", error=str(exc), retry_in_s=delay_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay_s):
                    await stop.wait()
            delay_s = min(delay_s * 2, max_backoff_s)
        else:
            return
