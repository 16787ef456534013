"""Serve the API with uvicorn (uvloop, httptools); `payment-service api` calls `serve_api`."""

import gc
from typing import Final

import uvicorn

from payment_service.api.app import create_app
from payment_service.logging import configure_logging
from payment_service.settings import Settings
from payment_service.tracing import configure_tracing

# CPython's default (700 container objects allocated and not yet freed) ran a young collection every
# ~16 payments at 50 in flight, promoting the requests' live objects until a full collection walked the
# ~160,000 objects the imports leave behind (80-90 ms, about once per 1,000 payments). Together with
# `gc.freeze()` the collector's CPU fell from ~0.15 ms to under 0.01 ms per payment (bench/README.md),
# for at most this many young objects (a few MB) waiting a little longer for their collection.
GC_YOUNG_THRESHOLD: Final = 10_000


def tune_garbage_collector() -> None:
    """After start-up: keep what the imports built out of every later collection, collect the young less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def serve_api(settings: Settings, *, host: str, port: int) -> None:
    """Run one API process until SIGTERM or Ctrl-C (scale out with replicas: docs/operations.md)."""
    configure_logging(settings.log)
    configure_tracing("payment-service-api")
    options = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "log_config": None,  # keep the structlog set-up above
        "timeout_graceful_shutdown": 30,
        # httptools buffers headers without a limit; the app answers 431 past `max_header_bytes`
        # (`api/limits.py`). Were h11 chosen, it would stop reading at the same size.
        "h11_max_incomplete_event_size": settings.api.max_header_bytes,
    }
    app = create_app(settings)
    tune_garbage_collector()
    uvicorn.run(app, **options)  # type: ignore[arg-type]
