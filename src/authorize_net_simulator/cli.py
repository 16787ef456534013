"""`authorize-net-simulator serve`: run the simulator with uvicorn.

Every option also comes from the environment (`ANET_SIM_PORT`, `ANET_SIM_LOGIN_ID`, …); an option
given on the command line wins.
"""

from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr

from authorize_net_simulator.app import create_app
from authorize_net_simulator.settings import SimulatorSettings

app = typer.Typer(help="Authorize.Net API simulator.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Authorize.Net API simulator."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (env ANET_SIM_HOST, default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env ANET_SIM_PORT, default 8002).")] = None,
    login_id: Annotated[
        str | None, typer.Option(help="The only API login id accepted (env ANET_SIM_LOGIN_ID).")
    ] = None,
    transaction_key: Annotated[
        str | None, typer.Option(help="The only transaction key accepted (env ANET_SIM_TRANSACTION_KEY).")
    ] = None,
    signature_key: Annotated[
        str | None,
        typer.Option(help="128-hex-char signature key for webhooks and transHashSha2 (env ANET_SIM_SIGNATURE_KEY)."),
    ] = None,
    webhook_url: Annotated[
        str | None, typer.Option(help="Where webhook notifications are posted (env ANET_SIM_WEBHOOK_URL).")
    ] = None,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict/--lenient",
            help="Answer the harsh way wherever the live gateway is undocumented: no transrefId, requestedAmount "
            "or totalNumInResultSet; settled-batch dates read as US Pacific time (env ANET_SIM_STRICT).",
        ),
    ] = None,
) -> None:
    """Serve the simulator's API and its /_sim/ test surface."""
    plain = {"host": host, "port": port, "login_id": login_id, "webhook_url": webhook_url, "strict": strict}
    overrides: dict[str, object] = {name: value for name, value in plain.items() if value is not None}
    for name, secret in (("transaction_key", transaction_key), ("signature_key", signature_key)):
        if secret is not None:
            overrides[name] = SecretStr(secret)
    settings = SimulatorSettings(**overrides)  # type: ignore[arg-type]
    # The gateway endpoint sends its own `Date`, from the simulator's clock; uvicorn's would come first.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        date_header=False,
    )
