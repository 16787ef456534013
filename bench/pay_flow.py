"""Benchmark of `POST /payments/pay` over real HTTP: simulator, reference db-service and API as processes.

    .venv/bin/python bench/pay_flow.py [--latency-ms 0|300] [--concurrency N] [--payments N] [--pool N]
                                       [--kafka HOST:PORT] [--profile FILE]

Starts the three services as separate uvicorn processes on free ports (fresh SQLite files in a
temporary directory), seeds customers and orders, drives approved payments (each with an Idempotency-Key, as
front ends send them, unless `--no-keys`) from this process with one aiohttp session (a light client, so that on a small machine the figures are the services' rather
than the load generator's), and reports payments/s, latency percentiles and the CPU seconds per payment
of every process (utime + stime from /proc/<pid>/stat), the API's being the figure that matters.

Kafka is optional: with a broker at `--kafka` the API's in-process relay publishes the outbox during
the run and the report says how many relay passes it took; without one the outbox keeps the events
(the relay backs off) and the API's figure leaves the relay out.

`--profile FILE` samples the API with py-spy during the measured phase (raw collapsed stacks in FILE)
and prints the functions with the most samples, by own time and including callees. The profiler costs
the API some CPU itself, so take CPU figures from a run without it.
"""

import argparse
import asyncio
import collections
import contextlib
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from payment_service.api.auth import mint_token
from payment_service.settings import AuthSettings
from processes import cpu_seconds, free_ports, started, user_and_system_seconds, venv_command, wait_until_healthy
from profiling import print_profile, profiling

VISA = "4111111111111111"


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@contextlib.contextmanager
def service(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (
        log_path.open("wb") as log,
        started(command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, stop_timeout_s=15) as proc,
    ):
        yield proc


@contextlib.contextmanager
def simulator_and_db_service(
    workdir: Path, sim_port: int, db_port: int
) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """The simulator and a reference db-service (fresh SQLite file in `workdir`), both answering /healthz."""
    common = {"PYTHONUNBUFFERED": "1"}
    # The simulator's request log is a test surface; keeping it costs the simulator CPU on every call.
    sim_env = {**common, "ANET_SIM_REQUEST_LOG_SIZE": "0"}
    db_env = {**common, "REFERENCE_DB_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'db.sqlite3'}"}
    with (
        service(
            [venv_command("authorize-net-simulator"), "serve", "--port", str(sim_port)], sim_env, workdir / "sim.log"
        ) as sim,
        service(
            [venv_command("reference-db-service"), "serve", "--port", str(db_port)], db_env, workdir / "db.log"
        ) as db,
    ):
        wait_until_healthy(f"http://127.0.0.1:{sim_port}", sim)
        wait_until_healthy(f"http://127.0.0.1:{db_port}", db)
        yield sim, db


async def seed_orders(http: aiohttp.ClientSession, db_url: str, count: int, customers: int) -> list[tuple[str, str]]:
    """(customer id, order id) pairs, each order 3 x 19.99 = 59.97."""

    async def post(path: str, body: object) -> dict[str, object]:
        async with http.post(f"{db_url}{path}", json=body) as response:
            response.raise_for_status()
            created: dict[str, object] = await response.json()
            return created

    product = await post("/products", {"name": "Blue mug", "price": "19.99"})
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
        customer_ids.append(str((await post("/customers", body))["id"]))
    semaphore = asyncio.Semaphore(50)

    async def create(n: int) -> tuple[str, str]:
        customer_id = customer_ids[n % customers]
        async with semaphore:
            order = await post(
                "/orders", {"customer_id": customer_id, "items": [{"product_id": product["id"], "quantity": 3}]}
            )
        return customer_id, str(order["id"])

    return list(await asyncio.gather(*(create(n) for n in range(count))))


async def drive(
    api_url: str, orders: list[tuple[str, str]], tokens: dict[str, str], concurrency: int, *, with_keys: bool
) -> tuple[list[float], dict[int, int], float]:
    queue: collections.deque[tuple[str, str]] = collections.deque(orders)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def worker() -> None:
            while queue:
                customer_id, order_id = queue.popleft()
                body = {
                    "order_id": order_id,
                    "payment": {"card": {"number": VISA, "expiration": "2031-12", "cvv": "123"}},
                }
                headers = {"Authorization": f"Bearer {tokens[customer_id]}"}
                if with_keys:
                    headers["Idempotency-Key"] = f"bench-{order_id}"
                started = time.perf_counter()
                async with http.post(f"{api_url}/payments/pay", json=body, headers=headers) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def outbox_figures(store: Path) -> tuple[int, int, int]:
    """(published rows, pending rows, relay passes that marked rows) from the API's store."""
    with contextlib.closing(sqlite3.connect(store, timeout=30)) as conn:
        published, pending, passes = conn.execute(
            "SELECT count(published_at), count(*) - count(published_at), count(DISTINCT published_at) FROM outbox"
        ).fetchone()
    return int(published), int(pending), int(passes)


async def wait_for_outbox(store: Path, deadline_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline_s):
            while True:
                if not outbox_figures(store)[1]:
                    return
                await asyncio.sleep(0.2)  # another process's store: observed by polling


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `api_environment` reads, and the number of clients driving each API."""
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients (per API)")
    parser.add_argument("--log-level", default="INFO", help="the API's log level")
    parser.add_argument("--pool", type=int, default=32, help="the API's db-service connection pool size")
    parser.add_argument("--kafka", default="127.0.0.1:9092", help="bootstrap servers the API's relay publishes to")


def api_environment(args: argparse.Namespace, *, sim_url: str, db_url: str, store: Path) -> dict[str, str]:
    """The API's settings: the simulator, the db-service, a fresh SQLite store, the broker, the pool sizes."""
    return {
        "PYTHONUNBUFFERED": "1",
        "PAYMENTS_GATEWAY__ENDPOINT": f"{sim_url}/xml/v1/request.api",
        "PAYMENTS_DB_SERVICE__BASE_URL": db_url,
        "PAYMENTS_STORE__DATABASE_URL": f"sqlite+aiosqlite:///{store}",
        "PAYMENTS_LOG__LEVEL": args.log_level,
        "PAYMENTS_KAFKA__BOOTSTRAP_SERVERS": args.kafka,
        "PAYMENTS_DB_SERVICE__MAX_CONNECTIONS": str(args.pool),
        "PAYMENTS_GATEWAY__MAX_CONNECTIONS": str(max(args.pool, args.concurrency)),
    }


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pay-bench-"))
    sim_port, db_port, api_port = free_ports(3)
    sim_url, db_url, api_url = (f"http://127.0.0.1:{p}" for p in (sim_port, db_port, api_port))
    store = workdir / "payments.sqlite3"
    api_env = api_environment(args, sim_url=sim_url, db_url=db_url, store=store)
    with (
        simulator_and_db_service(workdir, sim_port, db_port) as (sim, db),
        service([venv_command("payment-service"), "api", "--port", str(api_port)], api_env, workdir / "api.log") as api,
    ):
        wait_until_healthy(api_url, api)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            if args.latency_ms:
                fault = {"kind": "latency", "latency_ms": args.latency_ms, "count": None, "probability": 1.0}
                async with http.post(f"{sim_url}/_sim/faults", json=fault) as response:
                    response.raise_for_status()
            warmup = min(200, max(20, args.payments // 10))
            orders = await seed_orders(http, db_url, args.payments + warmup, customers=min(200, args.payments))
        auth = AuthSettings()
        tokens = {c: mint_token(auth, customer_id=c, ttl_s=3600) for c, _ in orders}
        await drive(api_url, orders[:warmup], tokens, min(args.concurrency, warmup), with_keys=args.keys)
        await wait_for_outbox(store, deadline_s=5)
        outbox_before = outbox_figures(store)

        pids = {"api": api.pid, "db-service": db.pid, "simulator": sim.pid}
        with profiling(api.pid, args.profile):
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"client": own_cpu_seconds()}
            api_split_before = user_and_system_seconds(api.pid)
            latencies, statuses, elapsed = await drive(
                api_url, orders[warmup:], tokens, args.concurrency, with_keys=args.keys
            )
            cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()} | {"client": own_cpu_seconds()}
            api_split_after = user_and_system_seconds(api.pid)
        await wait_for_outbox(store, deadline_s=10)
        outbox_after = outbox_figures(store)

    done = len(latencies)
    print(
        f"payments: {done}  concurrency: {args.concurrency}  gateway latency: {args.latency_ms} ms"
        f"  idempotency keys: {'yes' if args.keys else 'no'}"
    )
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"throughput: {done / elapsed:.0f} payments/s  ({elapsed:.2f} s)")
    print(
        "latency ms: p50 {:.1f}  p95 {:.1f}  p99 {:.1f}  mean {:.1f}".format(
            *(1000 * percentile(latencies, f) for f in (0.5, 0.95, 0.99)), 1000 * statistics.fmean(latencies)
        )
    )
    api_cpu = cpu_after["api"] - cpu_before["api"]
    api_user_s, api_system_s = (after - before for after, before in zip(api_split_after, api_split_before, strict=True))
    print(
        f"API CPU: {api_cpu * 1000 / done:.3f} ms per payment ({api_cpu:.2f} s total;"
        f" user {api_user_s * 1000 / done:.3f}, system {api_system_s * 1000 / done:.3f})"
    )
    others = "  ".join(
        f"{name} {(cpu_after[name] - cpu_before[name]) * 1000 / done:.3f}"
        for name in ("db-service", "simulator", "client")
    )
    print(f"other CPU, ms per payment: {others}  (the machine has {os.cpu_count()} cores)")
    published = outbox_after[0] - outbox_before[0]
    passes = outbox_after[2] - outbox_before[2]
    print(
        f"outbox: {published} rows published in {passes} relay passes, {outbox_after[1]} pending"
        + ("" if published else f"  (no broker at {args.kafka}?)")
    )
    print(f"logs: {workdir}")
    if args.profile is not None:
        print_profile(args.profile, subject="the API", top=25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=int, default=0, help="gateway latency injected in the simulator")
    parser.add_argument("--payments", type=int, default=2000, help="payments measured (after a warm-up)")
    add_api_arguments(parser)
    parser.add_argument(
        "--no-keys", dest="keys", action="store_false", help="send no Idempotency-Key (by default each payment has one)"
    )
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the API into this file (raw stacks)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
