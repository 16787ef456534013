"""Serve the API with uvicorn (uvloop, httptools); `payment-service api` calls `serve_api`."""

import uvicorn
from fastapi import FastAPI

from payment_service.api.app import create_app
from payment_service.logging import configure_logging
from payment_service.settings import Settings
from payment_service.tracing import configure_tracing


def serve_api(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Run until SIGTERM or Ctrl-C. With several workers, each process builds its settings from the environment."""
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
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
    else:
        uvicorn.run("payment_service.api.server:app_from_environment", factory=True, workers=workers, **options)  # type: ignore[arg-type]


def app_from_environment() -> FastAPI:
    """The app factory for multi-worker uvicorn: settings from the environment, logging set up per process."""
    settings = Settings()
    configure_logging(settings.log)
    configure_tracing("payment-service-api")
    return create_app(settings)
