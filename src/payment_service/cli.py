"""`payment-service`: run the API or the worker, mint a dev token, watch events.

Settings are built here, once, and passed down; the commands import their entrypoint lazily so
`payment-service token` starts without loading the web stack.
"""

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Payment service: API, worker and dev tools.")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address (default from PAYMENTS_API__HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from PAYMENTS_API__PORT, 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Only 1: run more API replicas instead (docs/operations.md).")] = 1,
) -> None:
    """Serve the payment API (POST /payments/pay and friends): one process; scale out with replicas."""
    if workers != 1:
        # Forked uvicorn workers would each serve their own /metrics (a scrape sees one random process)
        # and run their own relay; replicas, one process each, are scraped and scaled one by one.
        raise typer.BadParameter(
            "the API runs one process: start more `payment-service api` replicas instead, each on its own "
            "port or host behind the load balancer, each scraped for /metrics (see docs/operations.md)",
            param_hint="--workers",
        )
    from payment_service.api.server import serve_api
    from payment_service.settings import Settings

    settings = Settings()
    serve_api(settings, host=host or settings.api.host, port=port or settings.api.port)


@app.command()
def worker() -> None:
    """Run the outbox relay, the payment consumer and the reconciler until SIGTERM or Ctrl-C."""
    from payment_service.settings import Settings
    from payment_service.worker.main import run_worker

    run_worker(Settings())


@app.command()
def token(
    customer: Annotated[str, typer.Option(help="Customer id: the token's subject.")],
    role: Annotated[list[str] | None, typer.Option(help="Role to grant, e.g. admin; repeatable.")] = None,
    ttl_s: Annotated[int, typer.Option("--ttl-s", help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a JWT signed with the configured key, for local use."""
    from payment_service.api.auth import mint_token
    from payment_service.settings import Settings

    typer.echo(mint_token(Settings().auth, customer_id=customer, roles=role or [], ttl_s=ttl_s))


events_app = typer.Typer(no_args_is_help=True, help="Watch the service's events on Kafka.")
app.add_typer(events_app, name="events")


@events_app.command("tail")
def events_tail(
    topic: Annotated[
        list[str] | None,
        typer.Option(help="Topic to watch; repeatable (default: the payment and notification topics)."),
    ] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest event instead of new ones.")] = False,
) -> None:
    """Print each event (headers and JSON data) on one line as it arrives, until Ctrl-C."""
    import asyncio
    import contextlib

    from payment_service.messaging.tail import tail_events
    from payment_service.settings import Settings

    kafka = Settings().kafka
    topics = topic or [kafka.payment_topic, kafka.notification_topic]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail_events(kafka, topics=topics, from_beginning=from_beginning, emit=typer.echo))
