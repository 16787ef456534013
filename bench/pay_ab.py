"""Two builds of the payment API side by side, under the same load at the same time: CPU per payment of each.

    .venv/bin/python bench/pay_ab.py --kafka HOST:PORT --a SRC_DIR --b SRC_DIR [--concurrency N]
                                     [--payments N] [--rounds N]

`--a` and `--b` are `src` directories put first on the `PYTHONPATH` of one API process each (an
empty string: the installed tree), for instance the `src/` of an older commit
(`git archive <commit> src | tar -x -C /tmp/old`). Both APIs talk to one simulator and one reference
db-service (as in `pay_flow.py`), each with its own SQLite store and relay, and are driven at once by
`--concurrency` clients each. So both see the same machine load, which on a shared machine moves CPU
figures of runs taken one after the other by more than the differences being measured. Each round
prints the CPU per payment of both (utime + stime from /proc) and their ratio b ÷ a; the end, both
processes' resident memory.
"""

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

import aiohttp

from pay_flow import add_api_arguments, api_environment, drive, seed_orders, service, simulator_and_db_service
from payment_service.api.auth import mint_token
from payment_service.settings import AuthSettings
from processes import cpu_seconds, free_ports, resident_bytes, venv_command, wait_until_healthy


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pay-ab-"))
    sim_port, db_port, a_port, b_port = free_ports(4)
    sim_url, db_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{db_port}"
    builds = {"a": (args.a, a_port), "b": (args.b, b_port)}
    with simulator_and_db_service(workdir, sim_port, db_port):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            warmup = min(200, max(20, args.payments // 10))
            per_build = warmup + args.rounds * args.payments
            orders = await seed_orders(http, db_url, 2 * per_build, customers=min(200, args.payments))
        auth = AuthSettings()
        tokens = {c: mint_token(auth, customer_id=c, ttl_s=3600) for c, _ in orders}
        with (
            service(
                [venv_command("payment-service"), "api", "--port", str(a_port)],
                {
                    **api_environment(args, sim_url=sim_url, db_url=db_url, store=workdir / "a.sqlite3"),
                    "PYTHONPATH": args.a,
                },
                workdir / "a.log",
            ) as api_a,
            service(
                [venv_command("payment-service"), "api", "--port", str(b_port)],
                {
                    **api_environment(args, sim_url=sim_url, db_url=db_url, store=workdir / "b.sqlite3"),
                    "PYTHONPATH": args.b,
                },
                workdir / "b.log",
            ) as api_b,
        ):
            apis = {"a": (api_a, f"http://127.0.0.1:{a_port}"), "b": (api_b, f"http://127.0.0.1:{b_port}")}
            for proc, url in apis.values():
                wait_until_healthy(url, proc)
            queues = {"a": orders[:per_build], "b": orders[per_build:]}

            async def both(count: int, offset: int) -> dict[str, tuple[float, int]]:
                before = {name: cpu_seconds(proc.pid) for name, (proc, _) in apis.items()}
                results = await asyncio.gather(
                    *(
                        drive(url, queues[name][offset : offset + count], tokens, args.concurrency, with_keys=True)
                        for name, (_, url) in apis.items()
                    )
                )
                after = {name: cpu_seconds(proc.pid) for name, (proc, _) in apis.items()}
                done = {name: len(result[0]) for name, result in zip(apis, results, strict=True)}
                for name, (_, statuses, _) in zip(apis, results, strict=True):
                    if set(statuses) != {201}:
                        raise SystemExit(f"build {name} answered {statuses}")
                return {name: (after[name] - before[name], done[name]) for name in apis}

            await both(warmup, 0)
            ratios = []
            for round_number in range(1, args.rounds + 1):
                figures = await both(args.payments, warmup + (round_number - 1) * args.payments)
                per_payment = {name: 1000 * cpu / done for name, (cpu, done) in figures.items()}
                ratios.append(per_payment["b"] / per_payment["a"])
                print(
                    f"round {round_number}: API CPU per payment a {per_payment['a']:.3f} ms, b {per_payment['b']:.3f} ms,"
                    f" b / a = {ratios[-1]:.3f}  (load {os.getloadavg()[0]:.1f})"
                )
            rss = {name: resident_bytes(proc.pid) / 2**20 for name, (proc, _) in apis.items()}
            print(f"resident memory after the rounds: a {rss['a']:.0f} MiB, b {rss['b']:.0f} MiB")
    print(
        f"builds: a = {builds['a'][0] or 'installed'}, b = {builds['b'][0] or 'installed'};"
        f" concurrency {args.concurrency} each; mean b / a = {sum(ratios) / len(ratios):.3f}; logs: {workdir}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="src directory of build a ('' for the installed tree)")
    parser.add_argument("--b", required=True, help="src directory of build b ('' for the installed tree)")
    parser.add_argument("--payments", type=int, default=1000, help="payments per build and round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds")
    add_api_arguments(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
