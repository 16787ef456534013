"""Serve the API with uvicorn (uvloop, httptools); `payment-service api` calls `serve_api`."""

import uvicorn

from payment_service.api.app import create_app
from payment_service.logging import configure_logging
from payment_service.settings import Settings
from payment_service.tracing import configure_tracing


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
    uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
