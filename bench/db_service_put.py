"""The reference db-service alone: throughput and CPU per request of `PUT /payments` or of a payment's calls.

Starts `reference-db-service serve` in its own process on a fresh SQLite file (or `--database-url`),
creates orders, then sends requests with a fixed concurrency and prints requests per second, latency
percentiles and the server's CPU per request (utime + stime from /proc), then checks the final state.

    .venv/bin/python bench/db_service_put.py [--mix put] [--puts 3000] [--concurrency 32] [--orders 200]
                                             [--client httpx|raw] [--profile FILE]
    .venv/bin/python bench/db_service_put.py --mix pay [--payments 1000] [--concurrency 32] --client raw
                                             [--database-url postgresql+asyncpg://…/empty_db]

`--mix put` (the default): for each payment a `processing` version 1, a final version 2 (`approved`
or `declined`) and a duplicate of version 2 (a redelivery); checks highest versions stored and
approved orders paid.
`--mix pay`: what the payment API asks per payment, one payment after another on each connection:
`GET /orders/{id}`, `GET /customers/{id}`, `GET /products?ids=…` (two products) and
`PATCH /orders/{id}` (approved); each payment has its own order. `--mix order|customer|products|patch`
sends `--payments` requests of that one kind, for a per-endpoint figure. A warm-up of 100 requests
(not measured) precedes the non-`put` mixes.

`--client raw` sends the same requests with a minimal HTTP/1.1 client that costs far less CPU than
httpx, so that on a 2-core machine the figure is the server's rather than the load generator's.
`--profile FILE` samples the server with py-spy during the measured phase (raw collapsed stacks) and
prints the top frames; take CPU figures from a run without it. `--database-url` serves from that
database instead of a fresh SQLite file; it must be empty (e.g. a new database on the server that
`scripts/postgres/postgres.sh start` prints).
"""

import argparse
import asyncio
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from processes import RawHttpClient, cpu_seconds, free_port, started, wait_until_healthy
from profiling import print_profile, profiling

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0
WARMUP_REQUESTS = 100
MIXES = ("put", "pay", "order", "customer", "products", "patch")

Request = tuple[str, str, bytes | None]  # method, path, body
Unit = list[Request]  # sent one after another on one connection


def payment(order: dict[str, Any], n: int, version: int, status: str) -> dict[str, Any]:
    return {
        "order_id": order["id"],
        "customer_id": order["customer_id"],
        "status": status,
        "amount": "59.97",
        "currency": "USD",
        "gateway": {
            "name": "authorize.net",
            "transaction_id": str(80000000000 + n),
            "auth_code": "QW7T2K",
            "response_code": "1",
            "reason_code": "1",
            "message": "This transaction has been approved.",
            "avs_result": "Y",
            "cvv_result": "M",
            "account_number": "XXXX1111",
            "account_type": "Visa",
        },
        "created_at": f"2025-01-02T03:04:{n % 60:02d}.{n:06d}Z",
        "updated_at": "2025-01-02T03:05:00Z",
        "version": version,
    }


async def create_orders(http: httpx.AsyncClient, count: int, *, products: int = 1) -> list[dict[str, Any]]:
    customer = (
        await http.post(
            "/customers",
            json={
                "email": "bench@example.com",
                "first_name": "Bench",
                "last_name": "Mark",
                "phone": "+1 217 555 0100",
                "address": {
                    "line1": "1 Main St",
                    "city": "Springfield",
                    "state": "IL",
                    "zip": "62701",
                    "country": "US",
                },
            },
        )
    ).json()
    names = ("Mug", "Tea towel", "Teapot")
    created = [
        (await http.post("/products", json={"name": names[i], "price": "19.99"})).json() for i in range(products)
    ]
    items = [{"product_id": product["id"], "quantity": 3 if i == 0 else 1} for i, product in enumerate(created)]
    body = {"customer_id": customer["id"], "items": items}
    semaphore = asyncio.Semaphore(16)

    async def create() -> dict[str, Any]:
        async with semaphore:
            order: dict[str, Any] = (await http.post("/orders", json=body)).json()
            return order

    return list(await asyncio.gather(*(create() for _ in range(count))))


def server_cpu_seconds(pid: int) -> float | None:
    """The server's CPU time so far, or None when its /proc entry cannot be read."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return None


def build_puts(orders: list[dict[str, Any]], puts: int) -> list[Unit]:
    """Per payment: `processing` v1, final v2 (`approved` once per order, else `declined`), v2 again."""
    units: list[Unit] = []
    for n in range(puts // 3):
        order = orders[n % len(orders)]
        final = "approved" if n < len(orders) else "declined"
        for version, status in ((1, "processing"), (2, final), (2, final)):
            body = json.dumps(payment(order, n, version, status)).encode()
            units.append([("PUT", f"/payments/pay_{n:06d}", body)])
    return units


def build_pay_flow(orders: list[dict[str, Any]], mix: str) -> list[Unit]:
    """The payment API's db-service calls per payment (`pay`), or one kind of them; one order each."""
    units: list[Unit] = []
    for n, order in enumerate(orders):
        ids = ",".join(item["product_id"] for item in order["items"])
        patch = json.dumps({"payment_status": "approved", "payment_id": f"pay_{n:06d}"}).encode()
        calls: dict[str, Request] = {
            "order": ("GET", f"/orders/{order['id']}", None),
            "customer": ("GET", f"/customers/{order['customer_id']}", None),
            "products": ("GET", f"/products?ids={ids}", None),
            "patch": ("PATCH", f"/orders/{order['id']}", patch),
        }
        units.append(list(calls.values()) if mix == "pay" else [calls[mix]])
    return units


@dataclass
class Measurement:
    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: dict[int, int] = field(default_factory=dict)
    requests: int = 0
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None


async def drive(
    http: httpx.AsyncClient, units: list[Unit], *, concurrency: int, client: str, server_pid: int
) -> Measurement:
    queue: collections.deque[Unit] = collections.deque(units)
    measurement = Measurement()

    async def send_httpx(method: str, path: str, body: bytes | None) -> int:
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = await http.request(method, path, content=body, headers=headers)
        return response.status_code

    async def worker() -> None:
        raw = RawHttpClient(http.base_url.host, http.base_url.port or 80) if client == "raw" else None
        send = send_httpx if raw is None else raw.send
        while queue:
            for method, path, body in queue.popleft():
                started = time.perf_counter()
                status = await send(method, path, body)
                kind = f"{method} {path.split('/')[1].split('?')[0]}"
                measurement.latencies_ms[kind].append((time.perf_counter() - started) * 1000)
                measurement.statuses[status] = measurement.statuses.get(status, 0) + 1
                measurement.requests += 1
        if raw is not None:
            await raw.close()

    server_cpu_before = server_cpu_seconds(server_pid)
    client_cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    measurement.elapsed_s = time.perf_counter() - started
    measurement.client_cpu_s = time.process_time() - client_cpu_before
    server_cpu_after = server_cpu_seconds(server_pid)
    if server_cpu_before is not None and server_cpu_after is not None:
        measurement.server_cpu_s = server_cpu_after - server_cpu_before
    return measurement


def report(measurement: Measurement, *, units: int, args: argparse.Namespace) -> None:
    requests = measurement.requests
    what = "PUT /payments/{id}" if args.mix == "put" else f"mix {args.mix}"
    print(
        f"{what}: {requests} requests, concurrency {args.concurrency}, {args.client} client, "
        f"{measurement.elapsed_s:.2f} s"
    )
    print(f"  throughput: {requests / measurement.elapsed_s:,.0f} req/s")
    for kind, latencies in sorted(measurement.latencies_ms.items()):
        quantiles = statistics.quantiles(latencies, n=100)
        print(f"  latency ms, {kind}: p50 {quantiles[49]:.1f}  p90 {quantiles[89]:.1f}  p99 {quantiles[98]:.1f}")
    print(f"  statuses: {dict(sorted(measurement.statuses.items()))}")
    cpu = f"client {measurement.client_cpu_s / requests * 1000:.3f}"
    if measurement.server_cpu_s is not None:
        cpu += f", server {measurement.server_cpu_s / requests * 1000:.3f}"
    print(f"  CPU ms per request: {cpu} (server: one process)")
    if args.mix == "pay" and measurement.server_cpu_s is not None:
        print(f"  server CPU ms per payment (4 requests): {measurement.server_cpu_s / units * 1000:.3f}")


async def verify_puts(
    http: httpx.AsyncClient, orders: list[dict[str, Any]], measurement: Measurement, puts: int
) -> None:
    for order in (orders[0], orders[-1]):
        stored = (await http.get("/payments", params={"order_id": order["id"]})).json()
        assert all(p["version"] == 2 for p in stored), stored
        paid = (await http.get(f"/orders/{order['id']}")).json()
        assert paid["status"] == "paid", paid
    payments = puts // 3
    assert measurement.statuses == {201: payments, 200: 2 * payments}, measurement.statuses
    print("  check: highest versions stored, approved orders paid, no errors")


async def verify_pay_flow(http: httpx.AsyncClient, orders: list[dict[str, Any]], measurement: Measurement) -> None:
    assert set(measurement.statuses) == {200}, measurement.statuses
    if "PATCH orders" in measurement.latencies_ms:
        for order in (orders[0], orders[-1]):
            paid = (await http.get(f"/orders/{order['id']}")).json()
            assert (paid["status"], paid["payment_status"]) == ("paid", "approved"), paid
    print(
        "  check: every request answered 200" + (", orders paid" if "PATCH orders" in measurement.latencies_ms else "")
    )


async def run(args: argparse.Namespace, base_url: str, server_pid: int) -> None:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
        if args.mix == "put":
            orders = await create_orders(http, args.orders)
            units = build_puts(orders, args.puts)
        else:
            orders = await create_orders(http, args.payments + WARMUP_REQUESTS, products=2)
            units = build_pay_flow(orders, args.mix)
            warmup, units = units[:WARMUP_REQUESTS], units[WARMUP_REQUESTS:]
            await drive(
                http,
                [[request] for unit in warmup for request in unit][:WARMUP_REQUESTS],
                concurrency=args.concurrency,
                client=args.client,
                server_pid=server_pid,
            )
        with profiling(server_pid, args.profile):
            measurement = await drive(
                http, units, concurrency=args.concurrency, client=args.client, server_pid=server_pid
            )
        report(measurement, units=len(units), args=args)
        if args.mix == "put":
            await verify_puts(http, orders, measurement, args.puts)
        else:
            await verify_pay_flow(http, orders[WARMUP_REQUESTS:], measurement)
    if args.profile is not None:
        print_profile(args.profile, subject="the server", top=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", choices=MIXES, default="put")
    parser.add_argument("--puts", type=int, default=3000, help="--mix put: requests")
    parser.add_argument("--orders", type=int, default=200, help="--mix put: orders the payments share")
    parser.add_argument("--payments", type=int, default=1000, help="other mixes: payments (one order each)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy the server into this file (raw stacks)")
    parser.add_argument("--database-url", default=None, help="an empty database to serve from (default: new SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        database_url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        env = os.environ | {"REFERENCE_DB_DATABASE_URL": database_url}
        env.pop("REFERENCE_DB_TOKEN", None)
        command = [sys.executable, "-m", "reference_db_service", "serve", "--port", str(port)]
        with started(command, env=env, stdout=None, stderr=None, cwd=REPO_ROOT) as server:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_healthy(base_url, server, deadline_s=START_TIMEOUT_S)
            asyncio.run(run(args, base_url, server.pid))


if __name__ == "__main__":
    main()
