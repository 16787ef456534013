"""Charges per second through `AuthorizeNetGateway`, and the client's CPU time per charge.

Starts `authorize-net-simulator serve` on a free port in a separate process (so its CPU is not
counted), then charges unique invoices through the one aiohttp session built by
`build_http_client`, first one at a time (latency), then with N in flight (throughput). Client
CPU per call is `time.process_time()` of this process divided by the number of calls. Finally it
measures the client's own CPU without the network: building and serialising a request, and
reading an approval, against a Pydantic model of the same answer.

    .venv/bin/python bench/gateway_charge.py [--charges 2000] [--concurrency 8]
"""

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import orjson
import structlog
from pydantic import BaseModel, ConfigDict, SecretStr

from payment_service.domain.money import Money
from payment_service.domain.payments import BillTo, CardDetails, ChargeOutcomeKind, ChargeRequest, LineItem
from payment_service.gateway import wire
from payment_service.gateway.client import AuthorizeNetGateway, build_http_client
from payment_service.gateway.outcomes import classify_transaction
from payment_service.settings import GatewaySettings
from processes import cpu_seconds, free_port, started, venv_command, wait_until_healthy

LOGIN_ID = "bench-login"
TRANSACTION_KEY = "benchTransKey001"


@contextmanager
def simulator_process(port: int) -> Iterator[tuple[str, int]]:
    command = [
        venv_command("authorize-net-simulator"),
        "serve",
        "--port",
        str(port),
        "--login-id",
        LOGIN_ID,
        "--transaction-key",
        TRANSACTION_KEY,
    ]
    env = {**os.environ, "ANET_SIM_REQUEST_LOG_SIZE": "0"}
    with started(command, env=env, stderr=subprocess.PIPE, stop_signal=signal.SIGINT) as process:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(base_url, process)
        yield base_url, process.pid


def make_request(number: int, run: str) -> ChargeRequest:
    return ChargeRequest(
        amount=Money.of("24.99"),
        payment_method=CardDetails(SecretStr("4111111111111111"), 2031, 8, SecretStr("123")),
        invoice_number=f"B{run}-{number}",
        ref_id=f"r{run}-{number}",
        line_items=(
            LineItem("1", "Widget", 1, Decimal("14.99")),
            LineItem("2", "Gadget", 1, Decimal("10.00")),
        ),
        customer_id="cust-88",
        customer_email="jo@example.test",
        bill_to=BillTo("Jo", "Rivera", "1 Main St", "Indianapolis", "IN", "46201", "US"),
        description="2 items",
        duplicate_window_s=120,
    )


async def run_charges(
    gateway: AuthorizeNetGateway, *, charges: int, concurrency: int, run: str, server_pid: int
) -> dict[str, float]:
    requests = [make_request(number, run) for number in range(charges)]
    queue: asyncio.Queue[ChargeRequest] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []
    kinds: dict[str, int] = {}

    async def worker() -> None:
        while not queue.empty():
            request = queue.get_nowait()
            started = time.perf_counter()
            outcome = await gateway.charge(request)
            latencies.append(time.perf_counter() - started)
            kinds[outcome.kind] = kinds.get(outcome.kind, 0) + 1

    times_started, wall_started = os.times(), time.perf_counter()
    server_started = cpu_seconds(server_pid)
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    wall, times = time.perf_counter() - wall_started, os.times()
    server_cpu = cpu_seconds(server_pid) - server_started
    user, system = times.user - times_started.user, times.system - times_started.system
    if kinds != {ChargeOutcomeKind.APPROVED: charges}:
        raise RuntimeError(f"expected only approvals, got {kinds}")
    latencies.sort()
    return {
        "charges_per_s": charges / wall,
        "client_cpu_ms_per_call": (user + system) / charges * 1000,
        "client_user_ms_per_call": user / charges * 1000,
        "client_system_ms_per_call": system / charges * 1000,
        "server_cpu_ms_per_call": server_cpu / charges * 1000,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str
    description: str | None = None


class _TransactionResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    responseCode: str | None = None  # noqa: N815
    authCode: str | None = None  # noqa: N815
    avsResultCode: str | None = None  # noqa: N815
    cvvResultCode: str | None = None  # noqa: N815
    transId: str | None = None  # noqa: N815
    accountNumber: str | None = None  # noqa: N815
    accountType: str | None = None  # noqa: N815
    messages: list[_Message] = []


class _ApiMessage(BaseModel):
    code: str
    text: str


class _Messages(BaseModel):
    resultCode: str  # noqa: N815
    message: list[_ApiMessage]


class _CreateTransactionResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")
    transactionResponse: _TransactionResponse | None = None  # noqa: N815
    refId: str | None = None  # noqa: N815
    messages: _Messages


def measure_codec(rounds: int = 20000) -> dict[str, float]:
    """Per-call CPU of the client's own work, without the network."""
    credentials = wire.Credentials(LOGIN_ID, SecretStr(TRANSACTION_KEY))
    request = make_request(1, "codec")
    approved = b"\xef\xbb\xbf" + orjson.dumps(
        {
            "transactionResponse": {
                "responseCode": "1",
                "authCode": "QW7T2K",
                "avsResultCode": "Y",
                "cvvResultCode": "M",
                "cavvResultCode": "",
                "transId": "80012345678",
                "refTransID": "",
                "transHash": "",
                "testRequest": "0",
                "accountNumber": "XXXX1111",
                "accountType": "Visa",
                "messages": [{"code": "1", "description": "This transaction has been approved."}],
                "transHashSha2": "AB" * 64,
                "SupplementalDataQualificationIndicator": 0,
            },
            "refId": "r1",
            "messages": {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]},
        }
    )

    def timed(action: object) -> float:
        assert callable(action)
        started = time.process_time()
        for _ in range(rounds):
            action()
        return (time.process_time() - started) / rounds * 1e6

    return {
        "build_and_serialise_us": timed(
            lambda: wire.build_create_transaction(
                credentials, wire.build_charge_transaction(request, transaction_type=wire.AUTH_CAPTURE), ref_id="r1"
            ).to_json()
        ),
        "parse_and_classify_us": timed(
            lambda: classify_transaction(wire.read_create_transaction(wire.decode_body(approved)))
        ),
        "pydantic_parse_us": timed(lambda: _CreateTransactionResponse.model_validate_json(approved[3:])),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--charges", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    arguments = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    port = free_port()
    with simulator_process(port) as (base_url, pid):
        settings = GatewaySettings(
            endpoint=f"{base_url}/xml/v1/request.api",
            login_id=LOGIN_ID,
            transaction_key=SecretStr(TRANSACTION_KEY),
            max_connections=max(arguments.concurrency, 1),
        )
        async with build_http_client(settings) as client:
            gateway = AuthorizeNetGateway(client, settings)
            await run_charges(gateway, charges=50, concurrency=4, run="warm", server_pid=pid)  # connections, caches
            serial = await run_charges(
                gateway, charges=min(arguments.charges, 500), concurrency=1, run="serial", server_pid=pid
            )
            parallel = await run_charges(
                gateway, charges=arguments.charges, concurrency=arguments.concurrency, run="parallel", server_pid=pid
            )
    codec = measure_codec()

    print(f"simulator: separate uvicorn process, 0 ms latency; client: {sys.version.split()[0]}, 1 process")
    for label, figures in (("serial", serial), (f"concurrency {arguments.concurrency}", parallel)):
        print(
            f"{label:<15}: {figures['charges_per_s']:7.1f} charges/s; client CPU {figures['client_cpu_ms_per_call']:.3f} ms/call"
            f" (user {figures['client_user_ms_per_call']:.3f}, system {figures['client_system_ms_per_call']:.3f});"
            f" simulator CPU {figures['server_cpu_ms_per_call']:.3f} ms/call;"
            f" latency p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms"
        )
    print(
        f"codec only  : build+serialise {codec['build_and_serialise_us']:.1f} us, parse+classify"
        f" {codec['parse_and_classify_us']:.1f} us (a Pydantic model of the same answer: {codec['pydantic_parse_us']:.1f} us)"
    )


if __name__ == "__main__":
    asyncio.run(main())
