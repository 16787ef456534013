"""`create_app(settings)`: the FastAPI application, its lifespan and its routes.

The lifespan opens the process's resources (`open_resources`), builds the use cases and yields them as
a typed `AppState`; on shutdown it lets charges already sent finish recording before closing anything.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from payment_service import tracing
from payment_service.api import admin, health, payments, webhooks
from payment_service.api import refunds as refunds_api
from payment_service.api.auth import TokenVerifier
from payment_service.api.dependencies import AppState
from payment_service.api.errors import install_error_handlers
from payment_service.api.limits import SizeLimitMiddleware
from payment_service.api.middleware import RequestContextMiddleware
from payment_service.api.openapi import install_openapi
from payment_service.messaging.dead_letters import DeadLetterQueue
from payment_service.resources import open_resources, running_outbox_relay
from payment_service.services.payments import PaymentService
from payment_service.services.reconciliation import Reconciler
from payment_service.services.refunds import RefundService
from payment_service.services.resolutions import ResolutionService
from payment_service.services.webhooks import WebhookService
from payment_service.settings import Settings

DESCRIPTION = """
Takes a customer's payment for an order and charges it through Authorize.Net, at most once.
Errors are RFC 9457 `application/problem+json` documents with a stable `code`.
"""


def create_app(settings: Settings) -> FastAPI:
    verifier = TokenVerifier(settings.auth)  # fails at start-up, not on the first request, if misconfigured

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[AppState]:
        # The in-process relay publishes each payment's events right after its commit.
        async with open_resources(settings) as resources, running_outbox_relay(resources):
            refunds = RefundService(
                database=resources.database,
                db_service=resources.db_service,
                gateway=resources.gateway,
                idempotency_ttl_s=settings.api.idempotency_ttl_s,
                outbox_written=resources.notify_outbox_written,
            )
            service = PaymentService(
                database=resources.database,
                db_service=resources.db_service,
                gateway=resources.gateway,
                duplicate_window_s=settings.gateway.duplicate_window_s,
                idempotency_ttl_s=settings.api.idempotency_ttl_s,
                fingerprint_secret=settings.api.fingerprint_secret.get_secret_value().encode(),
                accepted_currencies=settings.gateway.accepted_currencies,
                outbox_written=resources.notify_outbox_written,
                refunds=refunds,
            )
            # Settles single payments for webhooks and checks manual resolutions; rounds run in the worker.
            reconciler = Reconciler(
                database=resources.database,
                gateway=resources.gateway,
                db_service=resources.db_service,
                settings=settings.reconciler,
                outbox_written=resources.notify_outbox_written,
                refunds=refunds,
            )
            notifications = WebhookService(
                database=resources.database,
                gateway=resources.gateway,
                reconciler=reconciler,
                refunds=refunds,
                settings=settings.webhooks,
                signature_key=settings.gateway.signature_key.get_secret_value(),
                wakeup=asyncio.Event(),
            )
            # Woken by each stored notification; also sweeps what an earlier process left.
            processor = asyncio.create_task(notifications.run(), name="webhook-processor")
            try:
                resolutions = ResolutionService(
                    database=resources.database,
                    gateway=resources.gateway,
                    db_service=resources.db_service,
                    reconciler=reconciler,
                    outbox_written=resources.notify_outbox_written,
                )
                yield AppState(
                    settings=settings,
                    resources=resources,
                    payments=service,
                    refunds=refunds,
                    verifier=verifier,
                    webhooks=notifications,
                    resolutions=resolutions,
                    dead_letters=DeadLetterQueue(resources.publisher, settings.kafka),
                )
                await service.drain()
                await refunds.drain()
            finally:
                processor.cancel()
                await asyncio.wait({processor})

    app = FastAPI(
        title="Payment service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Tracing is `tracing.py`'s (OTLP when configured). FastAPI's own telemetry would only act on
        # global OpenTelemetry providers, which the service never installs, yet asks for them on
        # every request (~6 µs).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_openapi(app)
    install_error_handlers(app)
    app.include_router(payments.router)
    app.include_router(refunds_api.router)
    app.include_router(webhooks.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.add_middleware(
        SizeLimitMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        max_header_bytes=settings.api.max_header_bytes,
    )
    app.add_middleware(RequestContextMiddleware)  # around the limits: refusals carry a request id too
    tracing.instrument_app(app)
    return app
