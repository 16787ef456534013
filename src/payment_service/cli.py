"""`payment-service`: run the API or the worker, mint a dev token, watch events, operate a deployment.

Settings are built here, once, and passed down; the commands import their entrypoint lazily so
`payment-service token` starts without loading the web stack. The operator commands (`payments …`,
`dlq …`) speak only HTTP to a running API (`admin_client.py`).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from payment_service.admin_client import AdminClient

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


# ---------------------------------------------------------------------- operator commands (over HTTP)

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        envvar="PAYMENTS_ADMIN_API_URL",
        help="Base URL of the payment API (default: http://127.0.0.1 on PAYMENTS_API__PORT).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="PAYMENTS_ADMIN_TOKEN",
        help="An admin bearer token (default: one minted with the configured JWT key).",
    ),
]
Operator = Annotated[
    str | None, typer.Option("--operator", help="Who you are, recorded with decisions (default: your login name).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]

PAYMENT_FIELDS = (
    "id",
    "order_id",
    "customer_id",
    "status",
    "amount",
    "currency",
    "gateway.transaction_id",
    "gateway.response_code",
    "gateway.reason_code",
    "gateway.message",
    "gateway.account_number",
    "created_at",
    "updated_at",
)
PAYMENT_COLUMNS = ("id", "order_id", "status", "amount", "currency", "gateway.transaction_id", "updated_at")
DEAD_LETTER_COLUMNS = ("position", "key", "event_type", "reason", "error", "original_partition", "original_offset")


def _admin_client(api_url: str | None, token: str | None, operator: str | None) -> "AdminClient":
    import getpass

    from payment_service.admin_client import AdminClient
    from payment_service.api.auth import ADMIN_ROLE, mint_token
    from payment_service.settings import Settings

    settings = Settings()
    if api_url is None:
        host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::", "") else settings.api.host  # noqa: S104 - a bind-all address is reached locally
        api_url = f"http://{host}:{settings.api.port}"
    if token is None:
        subject = operator or getpass.getuser()
        token = mint_token(settings.auth, customer_id=subject, roles=[ADMIN_ROLE], ttl_s=300)
    return AdminClient(api_url, token)


def _emit(answer: Any, *, as_json: bool, table: Callable[[], str]) -> None:
    import orjson

    typer.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() if as_json else table())


@contextmanager
def _reporting_failures() -> Iterator[None]:
    """Print what the API said about a failed call and exit 1."""
    from payment_service.admin_client import AdminRequestFailed

    try:
        yield
    except AdminRequestFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


def _parse_duration_s(text: str) -> float:
    """`90`, `90s`, `10m`, `2h`, `1d` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        value = float(number)
    except ValueError as exc:
        raise typer.BadParameter("a duration is a number with s, m, h or d, e.g. 10m") from exc
    if value < 0:
        raise typer.BadParameter("a duration cannot be negative")
    return value * units[unit]


payments_app = typer.Typer(no_args_is_help=True, help="Look at and act on payments of a running deployment.")
app.add_typer(payments_app, name="payments")
dlq_app = typer.Typer(no_args_is_help=True, help="The dead-letter topic of payment events.")
app.add_typer(dlq_app, name="dlq")


@payments_app.command("show")
def payments_show(
    payment_id: str, api_url: ApiUrl = None, token: Token = None, operator: Operator = None, as_json: AsJson = False
) -> None:
    """One payment, with what the gateway said."""
    from payment_service.admin_client import render_record

    with _reporting_failures(), _admin_client(api_url, token, operator) as client:
        payment = client.show_payment(payment_id)
    _emit(payment, as_json=as_json, table=lambda: render_record(payment, PAYMENT_FIELDS))


@payments_app.command("list")
def payments_list(
    status: Annotated[str, typer.Option(help="processing, unknown, held_for_review, approved, declined, failed, …")],
    older_than: Annotated[str, typer.Option(help="Unchanged for at least this long: 90s, 10m, 2h, 1d.")] = "0s",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    api_url: ApiUrl = None,
    token: Token = None,
    operator: Operator = None,
    as_json: AsJson = False,
) -> None:
    """Payments in one status, oldest first."""
    from payment_service.admin_client import render_table

    older_than_s = _parse_duration_s(older_than)
    with _reporting_failures(), _admin_client(api_url, token, operator) as client:
        found = client.list_payments(status=status, older_than_s=older_than_s, limit=limit)
    _emit(found, as_json=as_json, table=lambda: render_table(found, PAYMENT_COLUMNS))


@payments_app.command("refund")
def payments_refund(
    payment_id: str,
    amount: Annotated[str | None, typer.Option(help="Part of the captured amount (default: all that is left).")] = None,
    reason: Annotated[str | None, typer.Option(help="Why; kept with the refund.")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Repeat a refund safely with the same key (default: a new one).")
    ] = None,
    api_url: ApiUrl = None,
    token: Token = None,
    operator: Operator = None,
    as_json: AsJson = False,
) -> None:
    """Refund a settled payment, or void an unsettled one (POST /payments/{id}/refunds)."""
    import uuid
    from decimal import Decimal, InvalidOperation

    from payment_service.admin_client import render_record

    try:
        parsed = Decimal(amount) if amount is not None else None
    except InvalidOperation as exc:
        raise typer.BadParameter("amount must be a decimal number, e.g. 12.50") from exc
    key = idempotency_key or f"cli-{uuid.uuid4()}"
    with _reporting_failures(), _admin_client(api_url, token, operator) as client:
        refund = client.refund(payment_id, amount=parsed, reason=reason, idempotency_key=key)
    fields = ("id", "payment_id", "kind", "amount", "status", "gateway.transaction_id", "created_at")
    _emit(refund, as_json=as_json, table=lambda: render_record(refund, fields))


@payments_app.command("resolve")
def payments_resolve(
    payment_id: str,
    status: Annotated[str, typer.Option(help="approved or failed.")],
    reason: Annotated[str, typer.Option(help="Why; kept with who decided and when.")],
    transaction_id: Annotated[
        str | None, typer.Option(help="The gateway's transaction id; required for approved, checked at the gateway.")
    ] = None,
    api_url: ApiUrl = None,
    token: Token = None,
    operator: Operator = None,
    as_json: AsJson = False,
) -> None:
    """Decide an unknown or held payment by hand; published like any other change."""
    from payment_service.admin_client import render_record

    if status not in ("approved", "failed"):
        raise typer.BadParameter("status is approved or failed")
    if status == "approved" and transaction_id is None:
        raise typer.BadParameter("approving needs --transaction-id, which is checked at the gateway")
    with _reporting_failures(), _admin_client(api_url, token, operator) as client:
        payment = client.resolve(payment_id, status=status, reason=reason, transaction_id=transaction_id)
    _emit(payment, as_json=as_json, table=lambda: render_record(payment, PAYMENT_FIELDS))


@dlq_app.command("list")
def dlq_list(api_url: ApiUrl = None, token: Token = None, operator: Operator = None, as_json: AsJson = False) -> None:
    """Every dead-lettered payment event, with why it was dead-lettered."""
    from payment_service.admin_client import render_table

    with _reporting_failures(), _admin_client(api_url, token, operator) as client:
        entries = client.dead_letters()
    _emit(entries, as_json=as_json, table=lambda: render_table(entries, DEAD_LETTER_COLUMNS))


@dlq_app.command("replay")
def dlq_replay(
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every entry.")] = False,
    offset: Annotated[
        list[str] | None, typer.Option("--offset", help="PARTITION:OFFSET of an entry (see dlq list); repeatable.")
    ] = None,
    api_url: ApiUrl = None,
    token: Token = None,
    operator: Operator = None,
    as_json: AsJson = False,
) -> None:
    """Put dead-lettered payment events back on the payments topic (the consumer's upsert is idempotent)."""
    from payment_service.domain.dead_letters import DeadLetterPosition

    positions = offset or []
    if replay_all == bool(positions):
        raise typer.BadParameter("give either --all or --offset P:O")
    for text in positions:
        try:
            DeadLetterPosition.parse(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    with _reporting_failures(), _admin_client(api_url, token, operator) as client:
        answer = client.replay(positions=positions)
    _emit(answer, as_json=as_json, table=lambda: _replay_table(answer))
    if answer["missing"]:
        raise typer.Exit(1)


def _replay_table(answer: dict[str, Any]) -> str:
    from payment_service.admin_client import render_table

    text = f"replayed {len(answer['replayed'])}\n" + render_table(answer["replayed"], DEAD_LETTER_COLUMNS)
    if answer["missing"]:
        text += "\nno entry at: " + ", ".join(answer["missing"])
    return text
