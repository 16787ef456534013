"""Throughput of the reference db-service's `PUT /payments/{id}` on SQLite.

Starts `reference-db-service serve` in its own process on a fresh SQLite file, creates orders, then
sends PUTs with a fixed concurrency: for each payment a `processing` version 1, a final version 2
(`approved` or `declined`) and a duplicate of version 2 (a redelivery). Prints requests per second and
latency percentiles, then checks the final state (highest versions stored, approved orders paid).

    .venv/bin/python bench/db_service_put.py [--puts 3000] [--concurrency 32] [--orders 200] [--client httpx|raw]

`--client raw` sends the same requests with a minimal HTTP/1.1 client that costs far less CPU than
httpx, so that on a 2-core machine the figure is the server's rather than the load generator's.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until_healthy(http: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            if server.poll() is not None:
                raise SystemExit(f"reference-db-service exited with {server.returncode}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                await asyncio.sleep(0.05)  # a start-up poll, not a test


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


async def create_orders(http: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    customer = (
        await http.post(
            "/customers",
            json={
                "email": "bench@example.com",
                "first_name": "Bench",
                "last_name": "Mark",
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
    product = (await http.post("/products", json={"name": "Mug", "price": "19.99"})).json()
    body = {"customer_id": customer["id"], "items": [{"product_id": product["id"], "quantity": 3}]}
    return [(await http.post("/orders", json=body)).json() for _ in range(count)]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), to tell server cost from client cost."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Sender = Callable[[str, bytes], Awaitable[int]]


class RawHttpClient:
    """A minimal keep-alive HTTP/1.1 client: one connection per worker, bodies pre-encoded.

    It costs the load generator far less CPU than httpx, so on a small machine the figure measures
    the server rather than the client.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def put(self, path: str, body: bytes) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        head = f"PUT {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
        writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line, _, headers = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        length = 0
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            await self.streams[1].wait_closed()


def build_requests(orders: list[dict[str, Any]], puts: int) -> list[tuple[str, bytes]]:
    """Per payment: `processing` v1, final v2 (`approved` once per order, else `declined`), v2 again."""
    requests: list[tuple[str, bytes]] = []
    for n in range(puts // 3):
        order = orders[n % len(orders)]
        final = "approved" if n < len(orders) else "declined"
        for version, status in ((1, "processing"), (2, final), (2, final)):
            requests.append((f"/payments/pay_{n:06d}", json.dumps(payment(order, n, version, status)).encode()))
    return requests


@dataclass
class Measurement:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None


async def drive(
    http: httpx.AsyncClient, requests: list[tuple[str, bytes]], *, concurrency: int, client: str, server_pid: int
) -> Measurement:
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    measurement = Measurement()

    async def send_httpx(path: str, body: bytes) -> int:
        response = await http.put(path, content=body, headers={"Content-Type": "application/json"})
        return response.status_code

    async def worker() -> None:
        raw = RawHttpClient(http.base_url.host, http.base_url.port or 80) if client == "raw" else None
        send: Sender = send_httpx if raw is None else raw.put
        while not queue.empty():
            path, body = queue.get_nowait()
            started = time.perf_counter()
            status = await send(path, body)
            measurement.latencies_ms.append((time.perf_counter() - started) * 1000)
            measurement.statuses[status] = measurement.statuses.get(status, 0) + 1
        if raw is not None:
            await raw.close()

    server_cpu_before = cpu_seconds(server_pid)
    client_cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    measurement.elapsed_s = time.perf_counter() - started
    measurement.client_cpu_s = time.process_time() - client_cpu_before
    server_cpu_after = cpu_seconds(server_pid)
    if server_cpu_before is not None and server_cpu_after is not None:
        measurement.server_cpu_s = server_cpu_after - server_cpu_before
    return measurement


def report(measurement: Measurement, *, requests: int, concurrency: int, client: str) -> None:
    quantiles = statistics.quantiles(measurement.latencies_ms, n=100)
    print(
        f"PUT /payments/{{id}}: {requests} requests, concurrency {concurrency}, {client} client, "
        f"{measurement.elapsed_s:.2f} s"
    )
    print(f"  throughput: {requests / measurement.elapsed_s:,.0f} req/s")
    print(f"  latency ms: p50 {quantiles[49]:.1f}  p90 {quantiles[89]:.1f}  p99 {quantiles[98]:.1f}")
    print(f"  statuses: {dict(sorted(measurement.statuses.items()))}")
    cpu = f"client {measurement.client_cpu_s / requests * 1000:.2f}"
    if measurement.server_cpu_s is not None:
        cpu += f", server {measurement.server_cpu_s / requests * 1000:.2f}"
    print(f"  CPU ms per request: {cpu} (server: one process)")


async def verify(http: httpx.AsyncClient, orders: list[dict[str, Any]], measurement: Measurement, puts: int) -> None:
    for order in (orders[0], orders[-1]):
        stored = (await http.get("/payments", params={"order_id": order["id"]})).json()
        assert all(p["version"] == 2 for p in stored), stored
        paid = (await http.get(f"/orders/{order['id']}")).json()
        assert paid["status"] == "paid", paid
    payments = puts // 3
    assert measurement.statuses == {201: payments, 200: 2 * payments}, measurement.statuses
    print("  check: highest versions stored, approved orders paid, no errors")


async def run(args: argparse.Namespace, base_url: str, server_pid: int) -> None:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as http:
        orders = await create_orders(http, args.orders)
        requests = build_requests(orders, args.puts)
        measurement = await drive(
            http, requests, concurrency=args.concurrency, client=args.client, server_pid=server_pid
        )
        report(measurement, requests=len(requests), concurrency=args.concurrency, client=args.client)
        await verify(http, orders, measurement, args.puts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--puts", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = os.environ | {"REFERENCE_DB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"}
        env.pop("REFERENCE_DB_TOKEN", None)
        command = [sys.executable, "-m", "reference_db_service", "serve", "--port", str(port)]
        server = subprocess.Popen(command, env=env, cwd=REPO_ROOT)
        try:

            async def go() -> None:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    await wait_until_healthy(http, server)
                await run(args, f"http://127.0.0.1:{port}", server.pid)

            asyncio.run(go())
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
