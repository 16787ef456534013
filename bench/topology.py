"""Side by side in one run: the pay flow on 1 API on SQLite, 1 API on PostgreSQL, 2 APIs on PostgreSQL.

    .venv/bin/python bench/topology.py --kafka HOST:PORT [--payments N] [--concurrency N] [--latency-ms L]

One simulator and one reference db-service serve every round; each round starts its API process(es)
on a fresh store (a SQLite file, or a new database on a throwaway PostgreSQL cluster started here with
`scripts/postgres/postgres.sh`, with `pg_stat_statements` loaded), warms up, then drives approved
payments with an Idempotency-Key each from `--concurrency` clients (split evenly over the APIs) and
reports, per payment:
- API CPU (every API process, utime + stime from /proc/<pid>/stat);
- PostgreSQL server CPU (the postmaster, its live backends and the children it reaped, from /proc);
- commits and rollbacks (`pg_stat_database` of the round's database), and statements
  (`pg_stat_statements` calls, BEGIN and COMMIT included; a pipelined `executemany` counts one per row);
- throughput as a ratio to the SQLite round.

Without PostgreSQL server binaries the PostgreSQL rounds are skipped, and the report says so.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from pay_flow import VISA, seed_orders, service, simulator_and_db_service
from payment_service.api.auth import mint_token
from payment_service.settings import AuthSettings
from processes import RawHttpClient, cpu_seconds, free_ports, venv_command, wait_until_healthy
from profiling import print_profile, profiling

REPO = Path(__file__).resolve().parent.parent
POSTGRES_SCRIPT = REPO / "scripts" / "postgres" / "postgres.sh"
CARD = {"number": VISA, "expiration": "2031-12", "cvv": "123"}


@dataclass(frozen=True)
class Round:
    name: str
    apis: int
    postgres: bool


ROUNDS = (
    Round("1 API on SQLite", 1, False),
    Round("1 API on PostgreSQL", 1, True),
    Round("2 APIs on PostgreSQL", 2, True),
)


@dataclass(frozen=True)
class Figures:
    payments: int
    elapsed_s: float
    api_cpu_s: float
    postgres_cpu_s: float | None
    commits: int | None
    rollbacks: int | None
    statements: int | None
    sessions: int | None
    statuses: dict[int, int]
    machine_cpu_s: float
    others_cpu_s: dict[str, float]  # the simulator, the reference db-service and this load generator
    top_statements: list[tuple[int, float, str]] | None = None  # (calls, total ms, query) over the round


@dataclass(frozen=True)
class Cluster:
    url: str  # postgresql+asyncpg://user@127.0.0.1:PORT/
    data_dir: Path

    def dsn(self, database: str) -> str:
        return self.url.replace("postgresql+asyncpg://", "postgresql://") + database

    def postmaster_pid(self) -> int:
        return int((self.data_dir / "data" / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Cluster | None]:
    """A throwaway cluster (stopped and deleted on exit), or None when the server binaries are missing."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
    env = {**os.environ, "PG_DATA_DIR": str(data_dir), "PG_OPTIONS": "-c shared_preload_libraries=pg_stat_statements"}
    started = subprocess.run([str(POSTGRES_SCRIPT), "start"], env=env, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        print(f"PostgreSQL rounds skipped: {started.stderr.strip()}")
        yield None
        return
    try:
        yield Cluster(started.stdout.strip(), data_dir)
    finally:
        subprocess.run([str(POSTGRES_SCRIPT), "stop"], env=env, check=False)


def machine_cpu_seconds() -> float:
    """CPU time every core of the machine spent busy (all processes, kernel included), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU of the whole server: postmaster (with the children it reaped) and its live children."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(f) for f in fields[11:15]) / ticks  # utime, stime, cutime, cstime
            elif ppid == postmaster:
                total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def server_counters(cluster: Cluster, database: str) -> tuple[int, int, int, int]:
    """(commits, rollbacks, statements, sessions) of `database` so far, read from another database."""
    conn = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        # Backends flush their statistics at most once a second: wait for that, then read afresh.
        await asyncio.sleep(1.2)
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        commits, rollbacks, sessions = await conn.fetchrow(
            "SELECT xact_commit, xact_rollback, sessions FROM pg_stat_database WHERE datname = $1", database
        )
        statements = await conn.fetchval(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = $1",
            database,
        )
        return int(commits), int(rollbacks), int(statements), int(sessions)
    finally:
        await conn.close()


async def statement_breakdown(cluster: Cluster, database: str) -> list[tuple[int, float, str]]:
    """Every statement `database` ran (since its creation), most called first: (calls, total ms, query)."""
    conn = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        rows = await conn.fetch(
            "SELECT calls, total_exec_time, query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = $1 ORDER BY calls DESC, total_exec_time DESC",
            database,
        )
        return [(int(r[0]), float(r[1]), " ".join(str(r[2]).split())) for r in rows]
    finally:
        await conn.close()


async def create_database(cluster: Cluster, name: str) -> str:
    conn = await asyncpg.connect(cluster.dsn("postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # our own fixed names
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await conn.close()
    return cluster.url + name


async def run_round(
    spec: Round,
    args: argparse.Namespace,
    *,
    workdir: Path,
    sim_url: str,
    db_url: str,
    orders: list[tuple[str, str]],
    tokens: dict[str, str],
    cluster: Cluster | None,
    others: dict[str, int],
) -> Figures:
    database = f"bench_{spec.apis}_api"
    if spec.postgres:
        assert cluster is not None
        store_url = await create_database(cluster, database)
    else:
        store_url = f"sqlite+aiosqlite:///{workdir / 'payments.sqlite3'}"
    ports = free_ports(spec.apis)
    api_env = {
        "PYTHONUNBUFFERED": "1",
        "PAYMENTS_GATEWAY__ENDPOINT": f"{sim_url}/xml/v1/request.api",
        "PAYMENTS_DB_SERVICE__BASE_URL": db_url,
        "PAYMENTS_STORE__DATABASE_URL": store_url,
        "PAYMENTS_LOG__LEVEL": "WARNING",
        "PAYMENTS_KAFKA__BOOTSTRAP_SERVERS": args.kafka,
        "PAYMENTS_DB_SERVICE__MAX_CONNECTIONS": "32",
        "PAYMENTS_GATEWAY__MAX_CONNECTIONS": str(max(32, args.concurrency)),
    }
    with contextlib.ExitStack() as stack:
        apis = [
            stack.enter_context(
                service(
                    [venv_command("payment-service"), "api", "--port", str(port)],
                    api_env,
                    workdir / f"api-{database}-{n}.log",
                )
            )
            for n, port in enumerate(ports)
        ]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, proc in zip(urls, apis, strict=True):
            wait_until_healthy(url, proc)
        warmup, measured = orders[: args.warmup], orders[args.warmup :]
        await drive_split(urls, warmup, tokens, min(args.concurrency, args.warmup))
        postmaster = cluster.postmaster_pid() if spec.postgres and cluster is not None else None
        before = await server_counters(cluster, database) if postmaster is not None and cluster else None
        statements_before = await statement_breakdown(cluster, database) if before and cluster else []
        api_before = sum(cpu_seconds(proc.pid) for proc in apis)
        others_before = {name: cpu_seconds(pid) for name, pid in others.items()} | {"load": time.process_time()}
        machine_before = machine_cpu_seconds()
        pg_before = postgres_cpu_seconds(postmaster) if postmaster is not None else 0.0
        profile = args.profile if args.profile is not None and spec.name == args.profile_round else None
        with profiling(apis[0].pid, profile):
            statuses, elapsed = await drive_split(urls, measured, tokens, args.concurrency)
        api_cpu = sum(cpu_seconds(proc.pid) for proc in apis) - api_before
        others_after = {name: cpu_seconds(pid) for name, pid in others.items()} | {"load": time.process_time()}
        machine_cpu = machine_cpu_seconds() - machine_before
        pg_cpu = postgres_cpu_seconds(postmaster) - pg_before if postmaster is not None else None
        after = await server_counters(cluster, database) if postmaster is not None and cluster else None
        top = (
            _difference(await statement_breakdown(cluster, database), statements_before) if after and cluster else None
        )
    deltas: list[int | None] = [a - b for a, b in zip(after, before, strict=True)] if after and before else [None] * 4
    commits, rollbacks, statements, sessions = deltas
    others_cpu = {name: others_after[name] - others_before[name] for name in others_before}
    return Figures(
        len(measured),
        elapsed,
        api_cpu,
        pg_cpu,
        commits,
        rollbacks,
        statements,
        sessions,
        statuses,
        machine_cpu,
        others_cpu,
        top,
    )


def _difference(
    after: list[tuple[int, float, str]], before: list[tuple[int, float, str]]
) -> list[tuple[int, float, str]]:
    earlier = {query: (calls, ms) for calls, ms, query in before}
    rows = [(calls - earlier.get(q, (0, 0.0))[0], ms - earlier.get(q, (0, 0.0))[1], q) for calls, ms, q in after]
    return sorted((row for row in rows if row[0] > 0), key=lambda row: (-row[0], -row[1]))


async def drive_split(
    urls: list[str], orders: list[tuple[str, str]], tokens: dict[str, str], concurrency: int
) -> tuple[dict[int, int], float]:
    """Drive `orders` through the APIs at once, each taking an even share of orders and clients.

    Each client is a `RawHttpClient` (one keep-alive connection, a fifth of aiohttp's CPU per request),
    so that on 2 cores the load generator takes as little as possible from the processes measured.
    """
    shares = [collections.deque(orders[n :: len(urls)]) for n in range(len(urls))]
    statuses: collections.Counter[int] = collections.Counter()

    async def client(url: str, share: collections.deque[tuple[str, str]]) -> None:
        parsed = urlsplit(url)
        raw = RawHttpClient(parsed.hostname or "127.0.0.1", parsed.port or 80, service_headers=False)
        try:
            while share:
                customer_id, order_id = share.popleft()
                body = json.dumps({"order_id": order_id, "payment": {"card": CARD}}).encode()
                headers = {"Authorization": f"Bearer {tokens[customer_id]}", "Idempotency-Key": f"bench-{order_id}"}
                statuses[await raw.send("POST", "/payments/pay", body, headers)] += 1
        finally:
            await raw.close()

    per_api = max(1, concurrency // len(urls))
    started = time.perf_counter()
    await asyncio.gather(*(client(url, share) for url, share in zip(urls, shares, strict=True) for _ in range(per_api)))
    return dict(statuses), time.perf_counter() - started


def report(results: dict[Round, Figures], args: argparse.Namespace) -> None:
    print(
        f"\n{args.payments} payments per round, {args.concurrency} clients, gateway latency {args.latency_ms} ms,"
        f" {os.cpu_count()} cores (shared with whatever else runs on the machine)"
    )
    base = results.get(ROUNDS[0])
    header = "set-up                  payments/s  vs SQLite  API CPU ms/pay  vs SQLite  PG CPU ms/pay"
    print(header + "  commits/pay  statements/pay  machine CPU ms/pay  sim / db-service / load ms/pay  statuses")
    for spec, f in results.items():
        rate = f.payments / f.elapsed_s
        api_ms = 1000 * f.api_cpu_s / f.payments
        ratio = rate / (base.payments / base.elapsed_s) if base else float("nan")
        cpu_ratio = api_ms / (1000 * base.api_cpu_s / base.payments) if base else float("nan")

        print(
            f"{spec.name:<24}{rate:>10.0f}  {ratio:>9.2f}  {api_ms:>14.2f}  {cpu_ratio:>9.2f}"
            f"  {_per(f.postgres_cpu_s, f.payments, 1000):>13}  {_per(f.commits, f.payments):>11}"
            f"  {_per(f.statements, f.payments):>14}  {_per(f.machine_cpu_s, f.payments, 1000):>18}"
            f"  {' / '.join(_per(v, f.payments, 1000) for v in f.others_cpu_s.values()):>30}"
            f"  {dict(sorted(f.statuses.items()))}"
        )
        if f.rollbacks:
            print(f"{'':<24}{_per(f.rollbacks, f.payments)} rollbacks/pay, {f.sessions} connections opened")


def report_statements(results: dict[Round, Figures]) -> None:
    for spec, f in results.items():
        if not f.top_statements:
            continue
        print(f"\nstatements of '{spec.name}' per payment (calls, server ms), most called first:")
        for calls, ms, query in f.top_statements:
            print(f"{calls / f.payments:>7.2f}  {ms / f.payments:>6.3f}  {query[:150]}")


def _per(value: float | None, payments: int, scale: float = 1.0) -> str:
    return "-" if value is None else f"{scale * value / payments:.2f}"


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="topology-bench-"))
    sim_port, db_port = free_ports(2)
    sim_url, db_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{db_port}"
    results: dict[Round, Figures] = {}
    with postgres_cluster() as cluster, simulator_and_db_service(workdir, sim_port, db_port) as (sim, db):
        rounds = [spec for spec in ROUNDS if (cluster is not None or not spec.postgres) and spec.name in args.rounds]
        per_round = args.warmup + args.payments
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            if args.latency_ms:
                fault = {"kind": "latency", "latency_ms": args.latency_ms, "count": None, "probability": 1.0}
                async with http.post(f"{sim_url}/_sim/faults", json=fault) as response:
                    response.raise_for_status()
            orders = await seed_orders(http, db_url, per_round * len(rounds), customers=200)
        auth = AuthSettings()
        tokens = {c: mint_token(auth, customer_id=c, ttl_s=3600) for c, _ in orders}
        for n, spec in enumerate(rounds):
            results[spec] = await run_round(
                spec,
                args,
                workdir=workdir,
                sim_url=sim_url,
                db_url=db_url,
                orders=orders[n * per_round : (n + 1) * per_round],
                tokens=tokens,
                cluster=cluster,
                others={"simulator": sim.pid, "db-service": db.pid},
            )
            print(f"{spec.name}: done")
    report(results, args)
    if args.statements:
        report_statements(results)
    print(f"logs: {workdir}")
    if args.profile is not None:
        print_profile(args.profile, subject=f"the first API of '{args.profile_round}'", top=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka", default="127.0.0.1:9092", help="bootstrap servers the APIs' relays publish to")
    parser.add_argument("--payments", type=int, default=2000, help="payments measured per round")
    parser.add_argument("--warmup", type=int, default=200, help="payments before measuring, per round")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients, split over the APIs")
    parser.add_argument("--latency-ms", type=int, default=0, help="gateway latency injected in the simulator")
    parser.add_argument(
        "--rounds", nargs="+", default=[spec.name for spec in ROUNDS], help="the set-ups to run (default: all three)"
    )
    parser.add_argument("--statements", action="store_true", help="list each PostgreSQL round's statements per payment")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy one API into this file (raw stacks)")
    parser.add_argument("--profile-round", default=ROUNDS[1].name, help="the set-up whose first API is profiled")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
