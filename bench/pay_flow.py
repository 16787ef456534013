"""Benchmark of `POST /payments/pay` over real HTTP: simulator, reference db-service and API as processes.

    .venv/bin/python bench/pay_flow.py [--latency-ms 0|300] [--concurrency N] [--payments N]

Starts the three services as separate uvicorn processes on free ports (fresh SQLite files in a
temporary directory), seeds customers and orders, drives approved payments with httpx async clients,
and reports payments/s, latency percentiles and the API process's CPU seconds per payment
(utime + stime from /proc/<pid>/stat). Kafka is not needed: the outbox keeps the events.
"""

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from payment_service.api.auth import mint_token
from payment_service.settings import AuthSettings

VENV_BIN = Path(sys.executable).parent
VISA = "4111111111111111"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, counting pid and comm).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_until_up(url: str, proc: subprocess.Popen[bytes], deadline_s: float = 30.0) -> None:
    async with httpx.AsyncClient() as client, asyncio.timeout(deadline_s):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"process for {url} exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(url)).status_code < 500:
                    return
            await asyncio.sleep(0.1)


async def seed_orders(db_url: str, count: int, customers: int) -> list[tuple[str, str]]:
    """(customer id, order id) pairs, each order 3 x 19.99 = 59.97."""
    async with httpx.AsyncClient(base_url=db_url, timeout=30) as client:
        product = (await client.post("/products", json={"name": "Blue mug", "price": "19.99"})).json()
        customer_ids = []
        for n in range(customers):
            body = {
                "email": f"bench{n}@example.com",
                "first_name": "Bench",
                "last_name": f"Customer{n}",
                "address": {
                    "line1": "1 Test Street",
                    "city": "Springfield",
                    "state": "IL",
                    "zip": "62701",
                    "country": "US",
                },
            }
            customer_ids.append(str((await client.post("/customers", json=body)).json()["id"]))
        semaphore = asyncio.Semaphore(50)

        async def create(n: int) -> tuple[str, str]:
            customer_id = customer_ids[n % customers]
            async with semaphore:
                response = await client.post(
                    "/orders",
                    json={"customer_id": customer_id, "items": [{"product_id": product["id"], "quantity": 3}]},
                )
            response.raise_for_status()
            return customer_id, str(response.json()["id"])

        return list(await asyncio.gather(*(create(n) for n in range(count))))


async def drive(
    api_url: str, orders: list[tuple[str, str]], tokens: dict[str, str], concurrency: int
) -> tuple[list[float], dict[int, int], float]:
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for order in orders:
        queue.put_nowait(order)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [
        httpx.AsyncClient(base_url=api_url, timeout=60, limits=limits) for _ in range(max(1, concurrency // 100))
    ]

    async def worker(n: int) -> None:
        client = clients[n % len(clients)]
        while not queue.empty():
            customer_id, order_id = queue.get_nowait()
            body = {"order_id": order_id, "payment": {"card": {"number": VISA, "expiration": "2031-12", "cvv": "123"}}}
            started = time.perf_counter()
            response = await client.post(
                "/payments/pay", json=body, headers={"Authorization": f"Bearer {tokens[customer_id]}"}
            )
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    return latencies, statuses, elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pay-bench-"))
    sim_port, db_port, api_port = free_port(), free_port(), free_port()
    sim_url, db_url, api_url = (f"http://127.0.0.1:{p}" for p in (sim_port, db_port, api_port))
    common = {"PYTHONUNBUFFERED": "1"}
    db_env = {**common, "REFERENCE_DB_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'db.sqlite3'}"}
    api_env = {
        **common,
        "PAYMENTS_GATEWAY__ENDPOINT": f"{sim_url}/xml/v1/request.api",
        "PAYMENTS_DB_SERVICE__BASE_URL": db_url,
        "PAYMENTS_STORE__DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'payments.sqlite3'}",
        "PAYMENTS_LOG__LEVEL": args.log_level,
        "PAYMENTS_KAFKA__BOOTSTRAP_SERVERS": args.kafka,
        # httpcore scans its whole pool on every request: a pool sized to the load costs less CPU than a big one.
        "PAYMENTS_DB_SERVICE__MAX_CONNECTIONS": str(args.pool),
        "PAYMENTS_GATEWAY__MAX_CONNECTIONS": str(max(args.pool, args.concurrency)),
    }
    with (
        process(
            [str(VENV_BIN / "authorize-net-simulator"), "serve", "--port", str(sim_port)], common, workdir / "sim.log"
        ) as sim,
        process(
            [str(VENV_BIN / "reference-db-service"), "serve", "--port", str(db_port)], db_env, workdir / "db.log"
        ) as db,
        process(
            [str(VENV_BIN / "payment-service"), "api", "--port", str(api_port)], api_env, workdir / "api.log"
        ) as api,
    ):
        await asyncio.gather(
            wait_until_up(f"{sim_url}/_sim/transactions", sim),
            wait_until_up(f"{db_url}/healthz", db),
            wait_until_up(f"{api_url}/healthz", api),
        )
        if args.latency_ms:
            async with httpx.AsyncClient() as client:
                fault = {"kind": "latency", "latency_ms": args.latency_ms, "count": None, "probability": 1.0}
                (await client.post(f"{sim_url}/_sim/faults", json=fault)).raise_for_status()
        warmup = min(200, max(20, args.payments // 10))
        orders = await seed_orders(db_url, args.payments + warmup, customers=min(200, args.payments))
        auth = AuthSettings()
        tokens = {c: mint_token(auth, customer_id=c, ttl_s=3600) for c, _ in orders}
        await drive(api_url, orders[:warmup], tokens, min(args.concurrency, warmup))

        cpu_before = cpu_seconds(api.pid)
        latencies, statuses, elapsed = await drive(api_url, orders[warmup:], tokens, args.concurrency)
        cpu_after = cpu_seconds(api.pid)

    done = len(latencies)
    print(f"payments: {done}  concurrency: {args.concurrency}  gateway latency: {args.latency_ms} ms")
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"throughput: {done / elapsed:.0f} payments/s  ({elapsed:.2f} s)")
    print(
        "latency ms: p50 {:.1f}  p95 {:.1f}  p99 {:.1f}  mean {:.1f}".format(
            *(1000 * percentile(latencies, f) for f in (0.5, 0.95, 0.99)), 1000 * statistics.fmean(latencies)
        )
    )
    print(
        f"API CPU: {(cpu_after - cpu_before) * 1000 / done:.3f} ms per payment ({cpu_after - cpu_before:.2f} s total)"
    )
    print(f"logs: {workdir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=int, default=0, help="gateway latency injected in the simulator")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients")
    parser.add_argument("--payments", type=int, default=2000, help="payments measured (after a warm-up)")
    parser.add_argument("--log-level", default="INFO", help="the API's log level")
    parser.add_argument("--pool", type=int, default=32, help="the API's db-service connection pool size")
    parser.add_argument("--kafka", default="127.0.0.1:9092", help="bootstrap servers the API's relay tries")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
